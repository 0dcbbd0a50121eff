/* Test-only fault injection for vidfeat (LD_PRELOAD; never linked into vidfeat).
 *
 * Counts, and at the N-th call of a chosen kind on a chosen rank kills the process, makes the
 * call fail or hangs in it (tests/faults/test_faults.py, tests/lifecycle/test_lifecycle.py).
 * Configured by environment variables (all optional; without VIDFEAT_FAULT_CALL and
 * VIDFEAT_FAULT_SEGV_OPEN the shim only passes calls through):
 *   VIDFEAT_FAULT_RANK    rank to act on (OMPI_COMM_WORLD_RANK, else PMIX_RANK, else SLURM_PROCID;
 *                         a process with none of them is rank 0)
 *   VIDFEAT_FAULT_CALL    comma list of H5Dwrite, H5Fflush, H5Dset_extent, MPI_File_write_at_all,
 *                         MPI_File_write_at, pwrite (pwrite/pwrite64/pwritev on a file whose path
 *                         contains VIDFEAT_FAULT_PATH, default ".h5"), write (write() on a file
 *                         whose path contains VIDFEAT_FAULT_WPATH, default ".vfj"), fdatasync;
 *                         flushpwrite (pwrite on that file inside an H5Fflush: a kill inside a
 *                         metadata flush); "any" = all but flushpwrite. The N-th call counts all
 * listed kinds together. VIDFEAT_FAULT_N       1-based call number (0 or unset: never act, only
 * count) VIDFEAT_FAULT_ACTION  kill (SIGKILL before the call; default), kill-after (after it
 * returns), fail (the call fails: -1 / EIO), enospc (fails with ENOSPC; with VIDFEAT_FAULT_STICKY=1
 * every later counted call fails too: a full disk), hang (sleeps forever inside the call: a stuck
 * rank) When it acts, the shim writes "fault_shim: <action> <kind> call <n> of rank <r>" to stderr.
 *   VIDFEAT_FAULT_COUNT   file to which each process appends "rank <r> calls <n>" at exit
 *   VIDFEAT_FAULT_SEGV_OPEN  raise SIGSEGV when a thread other than the main one opens a file
 *                         whose path contains this (the decode worker: a codec crash)
 * Only processes whose executable is named "vidfeat" are affected (not mpirun, orted, ffmpeg).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
  K_H5DWRITE = 1,
  K_H5FFLUSH = 2,
  K_SETEXTENT = 4,
  K_WRITEATALL = 8,
  K_WRITEAT = 16,
  K_PWRITE = 32,
  K_WRITE = 64,
  K_FDATASYNC = 128,
  K_FLUSHWRITE = 256
};
static __thread int t_inFlush = 0;

enum { A_KILL = 0, A_KILLAFTER = 1, A_FAIL = 2, A_ENOSPC = 3, A_HANG = 4 };

static int g_init = 0, g_active = 0, g_kinds = 0, g_action = 0, g_sticky = 0, g_fired = 0,
           g_rank = 0;
static long g_n = 0;
static long g_count = 0;
static const char* g_path = ".h5";
static const char* g_wpath = ".vfj";
static const char* g_segv = NULL;
static const char* g_countFile = NULL;

static void report(void) {
  if (!g_countFile) return;
  FILE* f = fopen(g_countFile, "a");
  if (!f) return;
  fprintf(f, "rank %d calls %ld\n", g_rank, g_count);
  fclose(f);
}

static int myRank(void) {
  const char* names[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"};
  for (int i = 0; i < 3; ++i) {
    const char* v = getenv(names[i]);
    if (v && *v) return atoi(v);
  }
  return 0;
}

static void init(void) {
  if (__atomic_load_n(&g_init, __ATOMIC_ACQUIRE)) return;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  const char* base = strrchr(exe, '/');
  base = base ? base + 1 : exe;
  if (strcmp(base, "vidfeat") == 0) {
    g_rank = myRank();
    const char* want = getenv("VIDFEAT_FAULT_RANK");
    const char* calls = getenv("VIDFEAT_FAULT_CALL");
    g_segv = getenv("VIDFEAT_FAULT_SEGV_OPEN");
    if (calls && (!want || atoi(want) == g_rank)) {
      g_active = 1;
      if (strstr(calls, "any")) g_kinds = 255;
      if (strstr(calls, "flushpwrite")) g_kinds |= K_FLUSHWRITE;
      if (strstr(calls, "H5Dwrite")) g_kinds |= K_H5DWRITE;
      if (strstr(calls, "H5Fflush")) g_kinds |= K_H5FFLUSH;
      if (strstr(calls, "H5Dset_extent")) g_kinds |= K_SETEXTENT;
      if (strstr(calls, "MPI_File_write_at_all")) g_kinds |= K_WRITEATALL;
      if (strstr(calls, "MPI_File_write_at,") ||
          (strlen(calls) >= 17 && !strcmp(calls + strlen(calls) - 17, "MPI_File_write_at")))
        g_kinds |= K_WRITEAT;
      if (!strncmp(calls, "pwrite", 6) || strstr(calls, ",pwrite")) g_kinds |= K_PWRITE;
      if (!strncmp(calls, "write", 5) || strstr(calls, ",write")) g_kinds |= K_WRITE;
      if (strstr(calls, "fdatasync")) g_kinds |= K_FDATASYNC;
      const char* nn = getenv("VIDFEAT_FAULT_N");
      g_n = nn ? atol(nn) : 0;
      const char* a = getenv("VIDFEAT_FAULT_ACTION");
      g_action = !a || !strcmp(a, "kill")   ? A_KILL
                 : !strcmp(a, "kill-after") ? A_KILLAFTER
                 : !strcmp(a, "fail")       ? A_FAIL
                 : !strcmp(a, "hang")       ? A_HANG
                                            : A_ENOSPC;
      g_sticky = getenv("VIDFEAT_FAULT_STICKY") && atoi(getenv("VIDFEAT_FAULT_STICKY"));
      if (getenv("VIDFEAT_FAULT_PATH")) g_path = getenv("VIDFEAT_FAULT_PATH");
      if (getenv("VIDFEAT_FAULT_WPATH")) g_wpath = getenv("VIDFEAT_FAULT_WPATH");
      g_countFile = getenv("VIDFEAT_FAULT_COUNT");
      if (g_countFile) atexit(report);
    }
  }
  __atomic_store_n(&g_init, 1, __ATOMIC_RELEASE);
}

static int fdMatches(int fd, const char* needle) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = 0;
  return strstr(target, needle) != NULL;
}

static const char* kindName(int kind) {
  switch (kind) {
    case K_H5DWRITE:
      return "H5Dwrite";
    case K_H5FFLUSH:
      return "H5Fflush";
    case K_SETEXTENT:
      return "H5Dset_extent";
    case K_WRITEATALL:
      return "MPI_File_write_at_all";
    case K_WRITEAT:
      return "MPI_File_write_at";
    case K_PWRITE:
      return "pwrite";
    case K_WRITE:
      return "write";
    case K_FDATASYNC:
      return "fdatasync";
    case K_FLUSHWRITE:
      return "flushpwrite";
  }
  return "?";
}

/* 0: go on; 1: fail this call; 2: kill after the call (hang: never returns). */
static int decide(int kind) {
  init();
  if (!g_active || !(g_kinds & kind)) return 0;
  long k = __atomic_add_fetch(&g_count, 1, __ATOMIC_SEQ_CST);
  if (g_fired && g_sticky) return 1;
  if (g_n <= 0 || k != g_n) return 0;
  g_fired = 1;
  static const char* verbs[] = {"killing before", "killing after", "failing", "failing (ENOSPC)",
                                "hanging in"};
  fprintf(stderr, "fault_shim: %s %s call %ld of rank %d\n", verbs[g_action], kindName(kind), k,
          g_rank);
  if (g_action == A_KILL) kill(getpid(), SIGKILL);
  if (g_action == A_HANG)
    for (;;) pause();
  return g_action == A_KILLAFTER ? 2 : 1;
}

static void afterCall(int d) {
  if (d == 2) kill(getpid(), SIGKILL);
}

static int failErrno(void) { return g_action == A_ENOSPC ? ENOSPC : EIO; }

// The next definition of `name` (the real one). dlsym's object pointer is copied into the function
// pointer (POSIX guarantees the two have one representation; ISO C has no cast between them).
#define REAL(ret, name, ...)              \
  static ret (*real)(__VA_ARGS__) = NULL; \
  if (!real) {                            \
    void* sym = dlsym(RTLD_NEXT, name);   \
    memcpy(&real, &sym, sizeof real);     \
  }                                       \
  (void)0

typedef int64_t hid_t_;
typedef unsigned long long hsize_t_;

int H5Dwrite(hid_t_ d, hid_t_ m, hid_t_ ms, hid_t_ fs, hid_t_ p, const void* buf) {
  REAL(int, "H5Dwrite", hid_t_, hid_t_, hid_t_, hid_t_, hid_t_, const void*);
  int dd = decide(K_H5DWRITE);
  if (dd == 1) return -1;
  int rc = real(d, m, ms, fs, p, buf);
  afterCall(dd);
  return rc;
}

int H5Fflush(hid_t_ f, int scope) {
  REAL(int, "H5Fflush", hid_t_, int);
  int dd = decide(K_H5FFLUSH);
  if (dd == 1) return -1;
  ++t_inFlush;
  int rc = real(f, scope);
  --t_inFlush;
  afterCall(dd);
  return rc;
}

int H5Dset_extent(hid_t_ d, const hsize_t_* size) {
  REAL(int, "H5Dset_extent", hid_t_, const hsize_t_*);
  int dd = decide(K_SETEXTENT);
  if (dd == 1) return -1;
  int rc = real(d, size);
  afterCall(dd);
  return rc;
}

int MPI_File_write_at_all(MPI_File fh, MPI_Offset off, const void* buf, int count, MPI_Datatype t,
                          MPI_Status* st) {
  REAL(int, "MPI_File_write_at_all", MPI_File, MPI_Offset, const void*, int, MPI_Datatype,
       MPI_Status*);
  int dd = decide(K_WRITEATALL);
  if (dd == 1) return MPI_ERR_IO;
  int rc = real(fh, off, buf, count, t, st);
  afterCall(dd);
  return rc;
}

int MPI_File_write_at(MPI_File fh, MPI_Offset off, const void* buf, int count, MPI_Datatype t,
                      MPI_Status* st) {
  REAL(int, "MPI_File_write_at", MPI_File, MPI_Offset, const void*, int, MPI_Datatype, MPI_Status*);
  int dd = decide(K_WRITEAT);
  if (dd == 1) return MPI_ERR_IO;
  int rc = real(fh, off, buf, count, t, st);
  afterCall(dd);
  return rc;
}

static int pwriteDecide(int fd) {
  init();
  if (!g_active) return 0;
  if ((g_kinds & K_PWRITE) && fdMatches(fd, g_path)) return decide(K_PWRITE);
  if ((g_kinds & K_FLUSHWRITE) && t_inFlush && fdMatches(fd, g_path)) return decide(K_FLUSHWRITE);
  return 0;
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(ssize_t, "pwrite", int, const void*, size_t, off_t);
  int dd = pwriteDecide(fd);
  if (dd == 1) {
    errno = failErrno();
    return -1;
  }
  ssize_t rc = real(fd, buf, n, off);
  afterCall(dd);
  return rc;
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  REAL(ssize_t, "pwrite64", int, const void*, size_t, off_t);
  int dd = pwriteDecide(fd);
  if (dd == 1) {
    errno = failErrno();
    return -1;
  }
  ssize_t rc = real(fd, buf, n, off);
  afterCall(dd);
  return rc;
}

ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  REAL(ssize_t, "pwritev", int, const struct iovec*, int, off_t);
  int dd = pwriteDecide(fd);
  if (dd == 1) {
    errno = failErrno();
    return -1;
  }
  ssize_t rc = real(fd, iov, cnt, off);
  afterCall(dd);
  return rc;
}

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(ssize_t, "write", int, const void*, size_t);
  int dd = 0;
  if (__atomic_load_n(&g_init, __ATOMIC_ACQUIRE) && g_active && (g_kinds & K_WRITE) && fd > 2 &&
      fdMatches(fd, g_wpath))
    dd = decide(K_WRITE);
  if (dd == 1) {
    errno = failErrno();
    return -1;
  }
  ssize_t rc = real(fd, buf, n);
  afterCall(dd);
  return rc;
}

int fdatasync(int fd) {
  REAL(int, "fdatasync", int);
  int dd = decide(K_FDATASYNC);
  if (dd == 1) {
    errno = failErrno();
    return -1;
  }
  int rc = real(fd);
  afterCall(dd);
  return rc;
}

static void maybeSegv(const char* path) {
  init();
  if (g_segv && path && strstr(path, g_segv) && syscall(SYS_gettid) != getpid()) raise(SIGSEGV);
}

int open(const char* path, int flags, ...) {
  REAL(int, "open", const char*, int, ...);
  maybeSegv(path);
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return real(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  REAL(int, "open64", const char*, int, ...);
  maybeSegv(path);
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return real(path, flags, mode);
}
