#pragma once
// Working with a finished output: finding the segments of a time span, and exporting features to
// the layouts grounding code reads: one `<video_id>.npy` or `.npz` per video, or one HDF5 file
// with a dataset per video.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vidfeat/common/segment.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

struct Located {
  std::vector<int32_t> segments;  // indices whose [start_time, end_time) meets [start, end]
  double seedTau0 = 0.0;          // the seed's fractional index t * n * fps / l for start...
  double seedTau1 = 0.0;          // ...and for end (n segments, l frames, fps of the video)
};

// Segments of one video covering [start, end] seconds, using the stored per-segment times.
Located locateSegments(const StoredVideo& video, const std::vector<SegmentRecord>& segments,
                       double start, double end);

// What `vidfeat export` writes (docs/DESIGN.md, "The layouts grounding code reads"); any of the
// three layouts, together. Every id is checked (inside the folder, no two on one file or HDF5
// name) before anything is written.
struct ExportRequest {
  std::string npyDir;  // --npy DIR: <id>.npy [segments, D] (the seed's layout)
  std::string npzDir;  // --npz DIR: <id>.npz, key `features` [segments, D] float32 (Moment-DETR)
                       //   plus `start_time` / `end_time` [segments] float64 seconds
  std::string h5PerVideo;  // --h5-per-video FILE: dataset <id> [segments, D] (2D-TAN / MAD), its
                           //   `start_time` / `end_time` attributes [segments] float64 seconds
  // --concat A,B: the models whose features are joined along D, in this order (they need the same
  // windows). Empty: the file's model. Today a file holds one model, so only its name is found;
  // any other is an Error naming what is missing.
  std::vector<std::string> concat;
  std::vector<std::string> ids;  // --ids: these videos (default: every complete one)
};

// Writes `request`'s layouts from the output `file`; returns the number of videos written.
// (--crops 3 keeps its axis: [segments, crops, D], concatenated along D.)
int64_t exportFeatures(const std::string& file, const ExportRequest& request);

// exportFeatures with --npy only.
int64_t exportNpy(const std::string& file, const std::string& dir,
                  const std::vector<std::string>& ids);

// The path `<dir>/<id><extension>`, or throws Error when the id would escape `dir`.
std::string exportPathFor(const std::string& dir, const std::string& videoId,
                          const std::string& extension);
// exportPathFor(dir, videoId, ".npy").
std::string npyPathFor(const std::string& dir, const std::string& videoId);

// Writes a little-endian float32 .npy (format 1.0) of the given C-order shape.
void writeNpy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// One array of an .npz: `descr` is numpy's type string ('<f4', '<f8'), `data` its C-order bytes.
struct NpyArray {
  std::string name;  // the key: stored as <name>.npy in the zip
  std::string descr;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;
};
// Writes numpy's .npz: a zip of .npy v1.0 files, stored (no compression), each with its CRC-32
// (journal.h's crc32, zip's CRC).
// Throws Error when an entry or the archive passes 4 GiB (zip64 is not written).
void writeNpz(const std::string& path, const std::vector<NpyArray>& arrays);

}  // namespace vidfeat
