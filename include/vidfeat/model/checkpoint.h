#pragma once
// Checkpoint files as the CLI sees them, free of LibTorch: which format a file is (from its first
// bytes, never its extension), its SHA-256 for provenance, and what a load did.
#include <cstdint>
#include <string>
#include <vector>

namespace vidfeat {

enum class CheckpointFormat {
  TorchZip,      // torch.save since PyTorch 1.6: a zip of data.pkl + one record per storage
  TorchLegacy,   // torch.save before 1.6: magic, protocol, sys_info, object, storage keys, storages
  Caffe2Pickle,  // Caffe2 / Detectron .pkl: Python-2 pickle of {"blobs": {name: numpy array}}
};

const char* checkpointFormatName(CheckpointFormat f);

// Reads the first bytes of `path`. Throws InputError(path, reason) when they are none of the
// three formats (or the file cannot be read).
CheckpointFormat detectCheckpointFormat(const std::string& path);

// Lowercase hex SHA-256 of the file's bytes. Throws InputError when it cannot be read.
std::string sha256File(const std::string& path);
// SHA-256 of a buffer (lowercase hex).
std::string sha256Hex(const void* data, size_t size);

struct CheckpointReport {
  CheckpointFormat format = CheckpointFormat::TorchZip;
  std::string sha256;
  int64_t tensorsLoaded = 0;
  std::vector<std::string> absentHeadKeys;  // classifier keys the file lacked (features still fine)
  std::vector<std::string> notes;           // e.g. Caffe2 blobs reshaped or skipped
};

}  // namespace vidfeat
