#pragma once
// The manifest: which videos to extract. Either a text file of paths (one per line; blank lines
// and lines starting with '#' skipped) or a CSV whose header has a `path` column and optionally
// `video_id` (RFC 4180 quoting: fields with commas, quotes or spaces work). Relative paths resolve
// against the manifest's folder. The default video id is the path relative to the manifest's
// folder without its extension, so two clip.mp4 in different folders do not collide.
#include <string>
#include <vector>

#include "vidfeat/common/video_record.h"

namespace vidfeat {

// The output's fixed-length /videos fields (docs/FORMAT.md): a longer id or (resolved) path is
// refused by parseManifest, naming the lines, before any output file is created.
constexpr size_t kMaxVideoIdBytes = 256;
constexpr size_t kMaxPathBytes = 1024;

// A problem with one manifest line (a duplicate id, a missing or unreadable file).
struct ManifestProblem {
  size_t line = 0;
  std::string videoId;
  std::string path;
  std::string reason;
  std::string describe() const;  // "line 7: <path>: <reason>"
};

struct Manifest {
  std::string path;
  std::vector<VideoEntry> entries;        // valid lines, in order (duplicates left out)
  std::vector<size_t> lines;              // manifest line of each entry
  std::vector<ManifestProblem> problems;  // every problem found
  std::vector<VideoEntry> invalid;        // entries of problems that still have a unique id
                                          // (missing files), to be recorded as failed
};

// Parses a manifest (serial). Throws InputError naming the manifest for what makes the whole file
// unusable (cannot be read, unterminated quote, NUL byte, no videos); duplicate ids are problems.
Manifest parseManifest(const std::string& path);

// Checks that every entry's file exists and can be read (no decoding); moves the others to
// problems/invalid. Serial (rank 0).
void checkManifestFiles(Manifest& manifest);

// parseManifest, throwing InputError that lists every problem when there is one.
std::vector<VideoEntry> readManifest(const std::string& path);

// The default id of a manifest path: relative to the manifest folder, extension dropped.
std::string defaultVideoId(const std::string& manifestDir, const std::string& pathAsWritten);

}  // namespace vidfeat
