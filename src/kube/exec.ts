/**
 * `kubectl exec` with a stream on standard input: the way `prepull load` gets
 * an archive onto a node through the API server alone. Standard input is
 * closed at the end of the stream (v5.channel.k8s.io), so the remote command
 * sees end-of-file, and reading pauses while the WebSocket's buffer is full,
 * so a large archive never sits whole in memory.
 */
import { PassThrough, type Readable, Writable } from 'node:stream';
import { Exec, type KubeConfig } from '@kubernetes/client-node';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** 'Success' or 'Failure', from the API server's final status. */
  status: string;
  message?: string;
}

const HIGH_WATER = 8 * 1024 * 1024;

export async function execWithStdin(
  kc: KubeConfig,
  target: { namespace: string; pod: string; container: string },
  command: string[],
  stdin: Readable,
  onBytes?: (n: number) => void,
): Promise<ExecResult> {
  let stdout = '';
  let stderr = '';
  const collect = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        append(chunk.toString('utf8'));
        done();
      },
    });
  let socket: { bufferedAmount: number } | undefined;
  const paced = new PassThrough({ highWaterMark: 1024 * 1024 });
  stdin.on('data', (chunk: Buffer) => {
    onBytes?.(chunk.length);
    if (!paced.write(chunk) || (socket && socket.bufferedAmount > HIGH_WATER)) {
      stdin.pause();
      const resume = () => {
        if (!socket || socket.bufferedAmount <= HIGH_WATER) stdin.resume();
        else setTimeout(resume, 20);
      };
      paced.once('drain', resume);
      if (paced.writableLength === 0) setTimeout(resume, 20);
    }
  });
  stdin.on('end', () => paced.end());
  stdin.on('error', (err) => paced.destroy(err));

  return new Promise<ExecResult>((resolve, reject) => {
    new Exec(kc)
      .exec(
        target.namespace,
        target.pod,
        target.container,
        command,
        collect((s) => {
          stdout += s;
        }),
        collect((s) => {
          stderr += s;
        }),
        paced,
        false,
        (status) => {
          resolve({
            stdout,
            stderr,
            status: status.status ?? 'Unknown',
            ...(status.message ? { message: status.message } : {}),
          });
        },
      )
      .then((ws) => {
        socket = ws as unknown as { bufferedAmount: number };
        ws.on('error', reject);
        ws.on('close', () => resolve({ stdout, stderr, status: 'Closed' }));
      }, reject);
  });
}
