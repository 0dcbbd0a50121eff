#include "vidfeat/store/merge.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "vidfeat/common/error.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

namespace {

// An output written under a temporary name and renamed at the end: removed unless done, so a
// merge or join that fails midway leaves neither a partial output nor a damaged earlier one.
struct RemoveUnlessDone {
  const std::string& path;
  bool done = false;
  ~RemoveUnlessDone() {
    std::error_code ec;
    if (!done) std::filesystem::remove(path, ec);
  }
};

}  // namespace

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
  RemoveUnlessDone cleanup{temporary};
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

MergeSummary joinStores(const std::vector<std::string>& files, const std::string& output,
                        bool overwrite) {
  namespace fs = std::filesystem;
  if (files.size() < 2) throw Error("join: give two or more files");
  if (fs::exists(output) && !overwrite) {
    throw Error(output + ": exists; pass --overwrite to replace it");
  }
  std::vector<std::unique_ptr<StoreReader>> readers;
  std::vector<FileMetadata> metas;
  for (const auto& file : files) {
    std::error_code ec;
    if (fs::exists(output) && fs::equivalent(file, output, ec))
      throw Error("join refused: the output " + output + " is the input " + file);
    readers.push_back(std::make_unique<StoreReader>(file));
    const StoreSummary& s = readers.back()->summary();
    const FileMetadata& m = s.meta;
    if (m.stride != 0 || m.featureName.find("--clip-seconds") == std::string::npos ||
        m.targetFps != 0) {
      throw Error("join refused: " + file +
                  " has frame-based clips (or --fps); files join only when their windows are the "
                  "same: extract each with the same --clip-seconds");
    }
    if (m.crops != 1)
      throw Error("join refused: " + file + " has --crops " + std::to_string(m.crops));
    if (m.tailPolicy != readers.front()->summary().meta.tailPolicy) {
      throw Error("join refused: " + file + " has tail policy " + m.tailPolicy + ", " +
                  files.front() + " has " + readers.front()->summary().meta.tailPolicy);
    }
    metas.push_back(m);
  }
  // The same videos in every file (by id), in the first file's order.
  const auto& first = readers.front()->summary().videos;
  std::vector<std::map<std::string, size_t>> rowOf(readers.size());
  for (size_t f = 0; f < readers.size(); ++f) {
    const auto& videos = readers[f]->summary().videos;
    for (size_t i = 0; i < videos.size(); ++i) rowOf[f][videos[i].videoId] = i;
    if (videos.size() != first.size()) {
      throw Error("join refused: " + files[f] + " holds " + std::to_string(videos.size()) +
                  " videos, " + files.front() + " " + std::to_string(first.size()));
    }
    for (const auto& v : first) {
      if (!rowOf[f].count(v.videoId))
        throw Error("join refused: video '" + v.videoId + "' is not in " + files[f]);
    }
  }
  // Every video's rows, checked before anything is written: the windows all files have, with
  // the same times.
  struct Joined {
    VideoResult result;
    bool pending = false;
  };
  std::vector<Joined> joined(first.size());
  std::vector<std::vector<std::string>> stages;  // where each file's failed videos failed
  for (const auto& r : readers) stages.push_back(r->summary().lastFailureStages());
  FileMetadata meta = combinedMetadata(metas);
  MergeSummary summary;
  for (size_t i = 0; i < first.size(); ++i) {
    Joined& j = joined[i];
    static_cast<VideoOutcome&>(j.result) = first[i];
    j.result.videoRow = int64_t(i);
    j.result.error.clear();
    j.result.status = VideoStatus::Complete;
    std::vector<const StoredVideo*> rows;
    for (size_t f = 0; f < readers.size(); ++f) {
      const StoredVideo& v = readers[f]->summary().videos[rowOf[f].at(first[i].videoId)];
      rows.push_back(&v);
      if (v.status == VideoStatus::Pending) j.pending = true;
      if (v.status == VideoStatus::Failed && j.result.status != VideoStatus::Failed) {
        j.result.status = VideoStatus::Failed;
        j.result.error = v.error.empty() ? "failed in " + files[f] : v.error;
        j.result.failureStage = stages[f][rowOf[f].at(first[i].videoId)];
      }
    }
    ++summary.videos;
    if (j.pending) {
      ++summary.pending;
      continue;
    }
    if (j.result.status == VideoStatus::Failed) {
      ++summary.failed;
      continue;
    }
    int64_t n = rows.front()->segmentCount;
    for (const StoredVideo* v : rows) n = std::min(n, v->segmentCount);
    std::vector<std::vector<SegmentRecord>> segs(rows.size());
    std::vector<std::vector<float>> feats(rows.size());
    for (size_t f = 0; f < rows.size(); ++f)
      readers[f]->readRows(rows[f]->firstRow, n, segs[f], feats[f]);
    for (size_t f = 1; f < rows.size(); ++f) {
      for (int64_t k = 0; k < n; ++k) {
        const SegmentRecord &a = segs[0][size_t(k)], &b = segs[f][size_t(k)];
        // A window is known by its start; the partial last one may end where each model's
        // samples end (the first file's end is kept, as one extract of several models does).
        if (a.startTime != b.startTime || (k + 1 < n && a.endTime != b.endTime)) {
          throw Error("join refused: video '" + first[i].videoId + "' window " + std::to_string(k) +
                      " is [" + std::to_string(a.startTime) + ", " + std::to_string(a.endTime) +
                      ") s in " + files.front() + " and [" + std::to_string(b.startTime) + ", " +
                      std::to_string(b.endTime) + ") s in " + files[f] +
                      " (other --clip-seconds?)");
        }
      }
    }
    j.result.segments = segs.front();
    j.result.features.resize(size_t(n * meta.featureDim));
    int64_t column = 0;
    for (size_t f = 0; f < rows.size(); ++f) {
      const int64_t d = metas[f].featureDim;
      for (int64_t k = 0; k < n; ++k)
        std::copy_n(feats[f].data() + k * d, d,
                    j.result.features.data() + k * meta.featureDim + column);
      column += d;
    }
    summary.segments += n;
  }

  const std::string temporary = output + ".joining";
  RemoveUnlessDone cleanup{temporary};
  FeatureStore out = FeatureStore::create(temporary, MPI_COMM_SELF, meta);
  std::vector<VideoEntry> entries(first.begin(), first.end());
  out.addVideos(entries);
  std::vector<VideoResult> wave;
  for (auto& j : joined) {
    if (j.pending) continue;  // stays pending: extract the model it lacks, then join again
    wave.push_back(std::move(j.result));
    if (wave.size() >= 256) {
      out.writeWave(wave);
      wave.clear();
    }
  }
  out.writeWave(wave);
  out.close();
  fs::rename(temporary, output);
  cleanup.done = true;
  return summary;
}

}  // namespace vidfeat
