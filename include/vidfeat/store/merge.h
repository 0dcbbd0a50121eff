#pragma once
// `vidfeat merge`: the part files of a SLURM job array (each from `extract --shard K/N`) into one
// output. Parts must record the same model, config, checkpoint and clip settings, and no video id
// may appear in two parts; otherwise nothing is written and the error says why.
#include <string>
#include <vector>

namespace vidfeat {

struct MergeSummary {
  int64_t videos = 0;
  int64_t segments = 0;
  int64_t failed = 0;
  int64_t pending = 0;
};

// Serial (uses MPI_COMM_SELF for the output). Refuses to replace an existing output unless
// `overwrite`.
MergeSummary mergeStores(const std::vector<std::string>& parts, const std::string& output,
                         bool overwrite);

}  // namespace vidfeat
