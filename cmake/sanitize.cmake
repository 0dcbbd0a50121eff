# VIDFEAT_SANITIZE=ON: build all of OUR code (libraries, the vidfeat binary, the tests, including
# the model/ code that calls LibTorch) with AddressSanitizer + UndefinedBehaviorSanitizer, and make
# every UBSan finding fatal (-fno-sanitize-recover=all) so it fails the test that hit it.
# float-cast-overflow is not part of gcc's "undefined" set; it is added because hostile videos
# (absurd time bases, 10^9-frame headers) reach double -> integer conversions.
# LibTorch, Open MPI, HDF5 and FFmpeg stay the uninstrumented Debian builds: ASan intercepts their
# malloc/free all the same, it just cannot see out-of-bounds accesses inside them.
# tools/ci/sanitize.sh builds and runs the suite this way (with the runtime options it needs).
option(VIDFEAT_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
if(VIDFEAT_SANITIZE)
  set(_vf_san -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options(${_vf_san})
  add_link_options(${_vf_san})
  message(STATUS "vidfeat: ASan + UBSan build (${_vf_san})")
endif()
