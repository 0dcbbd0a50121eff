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

// `vidfeat join`: files of other models over the same videos and windows (each from extract with
// the same --clip-seconds) into one file whose rows hold their features side by side, as one
// extract of several models writes it (model_parts; the first file's /segments). How a model is
// added to an existing file: extract the new model alone, then join. Per video: complete in
// every file -> the windows all files have (times checked equal); failed in one -> failed (its
// first file's reason); pending in one -> pending. Refuses, before writing anything, files of
// frame-based clips or --fps, other tail policies or --crops, other videos, a window whose times
// differ, and an existing output unless `overwrite`. Serial (MPI_COMM_SELF).
MergeSummary joinStores(const std::vector<std::string>& files, const std::string& output,
                        bool overwrite);

}  // namespace vidfeat
