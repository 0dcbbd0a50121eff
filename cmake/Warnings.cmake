# Compiler warnings for all of our code (the house rules of issue 16): it compiles without a
# warning under -Wall -Wextra -Wpedantic -Wshadow (members carry the style's trailing underscore,
# so a parameter or a local of the same name shadows nothing). -Wundef goes with the build flags of
# vidfeat/build_config.h (#cmakedefine01, tested with #if): a flag read without its header warns.
# VIDFEAT_WERROR=ON makes every warning an error; CI turns it on (.ci/run -> tools/setup.sh), a
# plain build leaves it off so that a newer compiler's new warnings do not break a user's build.
# LibTorch, Open MPI and GoogleTest come in as system headers (-isystem), so their warnings are
# not shown; HDF5's (-I, store/ only) and FFmpeg's compile clean under these flags.
option(VIDFEAT_WERROR "Treat compiler warnings as errors (CI)" OFF)
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wundef)
if(VIDFEAT_WERROR)
  add_compile_options(-Werror)
  message(STATUS "vidfeat: warnings are errors (VIDFEAT_WERROR)")
endif()
