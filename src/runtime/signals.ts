/**
 * A long-running command's life: it runs until SIGINT or SIGTERM. The
 * clock's timers are unref'd (a pending retry must not keep a finished test
 * alive), so a process whose only work in flight is such a wait (the
 * operator waiting for its pod's image ID at start, a sender waiting for its
 * pod to end) would otherwise exit with code 0 on its own, and its container
 * would restart. This holds the process up until the signal. I/O.
 */

/** The first SIGINT or SIGTERM; the process stays up until then, or until `release`. */
export function untilSignal(): { signal: Promise<NodeJS.Signals>; release(): void } {
  // A timer that is ref'd: the event loop stays alive while it exists.
  const hold = setInterval(() => {}, 2 ** 30);
  let release = () => clearInterval(hold);
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => {
      const handler = () => {
        release();
        resolve(name);
      };
      process.once(name, handler);
      return [name, handler] as const;
    });
    release = () => {
      clearInterval(hold);
      for (const [name, handler] of handlers) process.off(name, handler);
    };
  });
  return { signal, release: () => release() };
}
