/* Test-only LD_PRELOAD shim: makes the N-th H5Dwrite of one MPI rank fail (return -1, as HDF5
 * does on an I/O error) or hang, to check that an error on one rank takes the whole job down with
 * a message instead of hanging it, and that the watchdog ends a job a stuck rank would block
 * (tests/lifecycle/test_lifecycle.py rank_error).
 *
 *   VIDFEAT_SHIM_FAIL_RANK   the rank (OMPI_COMM_WORLD_RANK, PMIX_RANK or SLURM_PROCID; default 0)
 *   VIDFEAT_SHIM_FAIL_CALL   which call of that rank fails, counting from 1 (default 1)
 *   VIDFEAT_SHIM_HANG=1      hang in that call (sleep forever) instead of failing
 *
 * Never linked into vidfeat: built as a separate module only for the tests. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef int64_t hid_t; /* HDF5 >= 1.10 */
typedef int herr_t;
typedef herr_t (*h5dwrite_fn)(hid_t, hid_t, hid_t, hid_t, hid_t, const void*);

static long envLong(const char* name, long fallback) {
  const char* v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : fallback;
}

static long myRank(void) {
  const char* names[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"};
  for (int i = 0; i < 3; ++i) {
    const char* v = getenv(names[i]);
    if (v && *v) return strtol(v, NULL, 10);
  }
  return 0;
}

herr_t H5Dwrite(hid_t dset, hid_t memType, hid_t memSpace, hid_t fileSpace, hid_t plist, const void* buf) {
  static h5dwrite_fn real = NULL;
  static long calls = 0;
  if (!real) real = (h5dwrite_fn)dlsym(RTLD_NEXT, "H5Dwrite");
  if (myRank() == envLong("VIDFEAT_SHIM_FAIL_RANK", 0) && ++calls == envLong("VIDFEAT_SHIM_FAIL_CALL", 1)) {
    const int hang = envLong("VIDFEAT_SHIM_HANG", 0) == 1;
    fprintf(stderr, "h5_fail_shim: %s H5Dwrite call %ld of rank %ld\n", hang ? "hanging in" : "failing", calls,
            myRank());
    while (hang) pause();
    return -1;
  }
  return real(dset, memType, memSpace, fileSpace, plist, buf);
}
