#include "vidfeat/store/merge.h"

#include <filesystem>
#include <map>

#include "vidfeat/common/error.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

MergeSummary mergeStores(const std::vector<std::string>& parts, const std::string& output,
                         bool overwrite) {
  if (parts.empty()) throw Error("merge: no part files given");
  namespace fs = std::filesystem;
  if (fs::exists(output) && !overwrite) {
    throw Error(output + ": exists; pass --overwrite to replace it");
  }
  // A part given twice, or the output naming a part (--overwrite would truncate it while it is
  // read), is refused up front with a message that says so.
  for (size_t i = 0; i < parts.size(); ++i) {
    std::error_code ec;
    if (fs::exists(output) && fs::equivalent(parts[i], output, ec)) {
      throw Error("merge refused: the output " + output + " is the part " + parts[i]);
    }
    for (size_t j = 0; j < i; ++j) {
      if (fs::equivalent(parts[j], parts[i], ec)) {
        throw Error("merge refused: " + parts[i] + " is given twice (overlapping parts)");
      }
    }
  }
  // Check everything before writing anything.
  std::vector<std::unique_ptr<StoreReader>> readers;
  std::map<std::string, std::string> owner;  // video id -> part
  for (const auto& part : parts) {
    readers.push_back(std::make_unique<StoreReader>(part));
    const StoreSummary& s = readers.back()->summary();
    if (readers.size() > 1) {
      auto diffs = metadataDifferences(readers.front()->summary().meta, s.meta);
      if (!diffs.empty()) {
        std::string why = part + " was made differently from " + parts.front() + ":";
        for (const auto& d : diffs) why += "\n  " + d;
        throw Error("merge refused: " + why);
      }
    }
    for (const auto& v : s.videos) {
      auto [it, fresh] = owner.emplace(v.videoId, part);
      if (!fresh) {
        throw Error("merge refused: video '" + v.videoId + "' is in both " + it->second + " and " +
                    part + " (overlapping shards?)");
      }
    }
  }

  MergeSummary summary;
  // Written under a temporary name and renamed at the end, so a merge that fails midway leaves
  // neither a partial output nor a damaged earlier one.
  const std::string temporary = output + ".merging";
  struct RemoveUnlessDone {
    const std::string& path;
    bool done = false;
    ~RemoveUnlessDone() {
      std::error_code ec;
      if (!done) fs::remove(path, ec);
    }
  } cleanup{temporary};
  FeatureStore out =
      FeatureStore::create(temporary, MPI_COMM_SELF, readers.front()->summary().meta);
  std::vector<VideoEntry> entries;
  for (const auto& r : readers) {
    for (const auto& v : r->summary().videos) entries.push_back(v);
  }
  int64_t row = out.addVideos(entries);
  for (const auto& r : readers) {
    const StoreSummary& s = r->summary();
    // The part's whole failure history, every /failures row in its order (a video that failed
    // twice, or failed and then completed on --retry-failed, keeps all its rows), moved to the
    // output's rows: written with the part's first wave.
    std::vector<StoredFailure> history = s.failures;
    // A failed video's message is its last /failures row; a part without one for it (a format 1
    // file kept the message in /videos) gets one, so the message survives.
    std::vector<bool> hasFailureRow(s.videos.size(), false);
    for (const auto& f : history)
      if (f.videoRow >= 0 && size_t(f.videoRow) < s.videos.size())
        hasFailureRow[size_t(f.videoRow)] = true;
    for (size_t i = 0; i < s.videos.size(); ++i) {
      if (s.videos[i].status == VideoStatus::Failed && !hasFailureRow[i])
        history.push_back({int64_t(i), "unknown", s.videos[i].error, 0});
    }
    for (auto& f : history) f.videoRow += row;
    std::vector<VideoResult> wave;
    auto writeWave = [&] {
      out.writeWave(wave, history);
      wave.clear();
      history.clear();
    };
    for (size_t i = 0; i < s.videos.size(); ++i, ++row) {
      const StoredVideo& v = s.videos[i];
      ++summary.videos;
      if (v.status == VideoStatus::Pending) {
        ++summary.pending;
        continue;  // stays pending: a rerun of that shard completes it
      }
      VideoResult res;
      static_cast<VideoOutcome&>(res) = v;
      res.videoRow = row;
      if (v.status == VideoStatus::Failed) {
        ++summary.failed;
      } else {
        r->readRows(v.firstRow, v.segmentCount, res.segments, res.features);
        summary.segments += v.segmentCount;
      }
      wave.push_back(std::move(res));
      if (wave.size() >= 256) writeWave();
    }
    writeWave();
  }
  out.close();
  fs::rename(temporary, output);
  cleanup.done = true;
  return summary;
}

}  // namespace vidfeat
