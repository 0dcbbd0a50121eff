// gtest main for suites that need MPI initialised (store, dist, cli tests).
#include <gtest/gtest.h>

#include "vidfeat/mpi/mpi_session.h"

int main(int argc, char** argv) {
  vidfeat::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
