/*
 * hold: the process every puller pod container runs, and the cluster's pause
 * (sandbox) image. It must run in any image, including FROM scratch and
 * distroless ones with no shell, as an unprivileged user on a read-only root
 * file system, so it is a static binary with no dependencies.
 *
 *   hold                 wait until SIGTERM or SIGINT, then exit 0
 *   hold install DIR     copy this executable to DIR/hold (mode 0555) and exit
 *
 * Waiting in pause() costs no CPU; as the container's process it keeps its
 * image "in use", so kubelet image garbage collection leaves the image alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

/* As a pod's pause process it may inherit orphans; reap them. */
static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int fail(const char *what, const char *path) {
  dprintf(2, "hold: %s %s: %s\n", what, path, strerror(errno));
  return 1;
}

static int install(const char *dir) {
  char tmp[4096], dst[4096];
  if (snprintf(dst, sizeof dst, "%s/hold", dir) >= (int)sizeof dst) {
    dprintf(2, "hold: install: path too long\n");
    return 1;
  }
  snprintf(tmp, sizeof tmp, "%s/.hold.tmp", dir);
  int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (in < 0) return fail("open", "/proc/self/exe");
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0555);
  if (out < 0) return fail("create", tmp);
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("read", "/proc/self/exe");
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail("write", tmp);
      }
      off += w;
    }
  }
  if (fchmod(out, 0555) != 0) return fail("chmod", tmp);
  if (close(out) != 0) return fail("close", tmp);
  close(in);
  /* rename makes the copy appear whole or not at all. */
  if (rename(tmp, dst) != 0) return fail("rename to", dst);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "install") == 0) return install(argv[2]);
  if (argc != 1) {
    dprintf(2, "usage: hold | hold install DIR\n");
    return 2;
  }
  struct sigaction stop = {0}, child = {0};
  stop.sa_handler = on_stop;
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
