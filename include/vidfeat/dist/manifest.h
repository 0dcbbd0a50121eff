#pragma once
// The manifest: which videos to extract. Either a text file of paths (one per line; blank lines
// and lines starting with '#' skipped) or a CSV whose header has a `path` column and optionally
// `video_id` (RFC 4180 quoting: fields with commas, quotes or spaces work). Relative paths resolve
// against the manifest's folder. The default video id is the path relative to the manifest's
// folder without its extension, so two clip.mp4 in different folders do not collide.
#include <mpi.h>

#include <string>
#include <vector>

#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// Reads and checks a manifest (serial). Throws InputError naming the manifest (and line) for a
// malformed file, an empty manifest or duplicate video ids.
std::vector<VideoEntry> readManifest(const std::string& path);

// The default id of a manifest path: relative to the manifest folder, extension dropped.
std::string defaultVideoId(const std::string& manifestDir, const std::string& pathAsWritten);

// Collective over `comm`: `root` holds the entries, every rank returns them.
std::vector<VideoEntry> broadcastEntries(const std::vector<VideoEntry>& entries, int root, MPI_Comm comm);

}  // namespace vidfeat
