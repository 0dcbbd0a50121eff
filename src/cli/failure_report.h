#pragma once
// Internal to src/cli: the report of an output's failed videos, shared by extract and merge.
#include <string>

#include "vidfeat/store/feature_store.h"

namespace vidfeat::cli {

// Logs the failed videos of `file` as warnings: a heading with the count per stage of each
// video's last failed attempt ("2 video(s) failed (1 decode, 1 open; <note>):"), then one line
// "  <video id>: <reason>" per video. Logs nothing when no video failed.
void reportFailures(const StoreSummary& file, const std::string& note);

}  // namespace vidfeat::cli
