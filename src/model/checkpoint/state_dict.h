#pragma once
// Reading checkpoints into PySlowFast-named tensors and loading them strictly into a module.
// No Python: torch.save files (zip and legacy) and Caffe2 pickles go through vidfeat's own
// restricted unpickler (src/model/checkpoint/pickle_reader.h).
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "vidfeat/model/checkpoint.h"

namespace vidfeat::model {

using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

// Reads `path` in whatever format its bytes say (detectCheckpointFormat). torch.save files: the
// dict under "model_state" (PySlowFast), under "state_dict" (TSM style; a leading "module." is
// stripped), or the file's dict itself when it is a bare state dict. Caffe2 pickles: every blob
// renamed as PySlowFast's Caffe2 -> PyTorch conversion does (shapes untouched: see
// conformCaffe2). Throws InputError(path, reason).
StateDict readStateDict(const std::string& path, CheckpointFormat* format = nullptr);

// PySlowFast's Caffe2 blob name -> PyTorch key conversion.
std::string caffe2ToPySlowFastName(const std::string& caffe2Name);

// What PySlowFast does to converted Caffe2 blobs before loading: blobs that match no model key
// and are training state (momentum, lr, model_iter) are dropped; a blob with fewer dimensions
// than its parameter gets trailing 1s (FC -> 1x1x1 conv); a 1-D BN blob shorter than its
// parameter by a whole factor is repeated. `notes` receives one line per change.
void conformCaffe2(StateDict& dict, const torch::nn::Module& module,
                   std::vector<std::string>* notes = nullptr);

// True for the classifier's keys, which may be absent when only features are wanted.
bool isHeadClassifierKey(const std::string& key);

struct ApplyResult {
  int64_t loaded = 0;
  std::vector<std::string> absentHeadKeys;
};

// Copies `dict` into `module`'s parameters and buffers, strictly: a missing key (other than the
// classifier's), an unexpected key or a shape mismatch throws Error listing all of them.
// BatchNorm's num_batches_tracked is neither required nor reported (it does not affect
// inference and Caffe2 has none).
ApplyResult applyStateDict(torch::nn::Module& module, const StateDict& dict);

// The .io.pt files tools/fixtures/make_fixtures.py and tools/reference/pysf_ref.py write.
struct IoFile {
  std::vector<torch::Tensor> inputs;  // the packed pathways, [B, C, T, H, W] each
  torch::Tensor feature;              // PySlowFast's feature, [B, D]
};
IoFile readIoFile(const std::string& path);

}  // namespace vidfeat::model
