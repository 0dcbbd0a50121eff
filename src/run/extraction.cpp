#include "vidfeat/run/extraction.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>

#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/decode/video_probe.h"
#include "vidfeat/mpi/broadcast.h"
#include "vidfeat/mpi/mpi_session.h"
#include "vidfeat/mpi/wave_sync.h"
#include "vidfeat/mpi/work_queue.h"
#include "vidfeat/run/manifest.h"
#include "vidfeat/run/output_lock.h"
#include "vidfeat/run/progress.h"
#include "vidfeat/run/rank_agreement.h"
#include "vidfeat/run/stop_signal.h"
#include "vidfeat/run/watchdog.h"
#include "vidfeat/store/journal.h"
#include "vidfeat/store/recovery.h"

namespace vidfeat {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Rank 0's verdict, shared so every rank throws together (nobody is left in a collective).
void shareVerdict(std::string& error, MPI_Comm comm) {
  broadcastString(error, 0, comm);
  if (!error.empty()) throw CollectiveError(error);
}

struct SharedManifest {
  std::vector<VideoEntry> valid;
  std::vector<VideoEntry> invalid;          // to record as failed
  std::vector<std::string> invalidReasons;  // why, one per invalid entry
};

// Rank 0 reads and checks the manifest and takes this shard; the others receive the result.
SharedManifest readAndShare(const ExtractionPlan& plan, MPI_Comm comm) {
  SharedManifest out;
  std::string error;
  if (commRank(comm) == 0) {
    try {
      Manifest m = parseManifest(plan.manifestPath);
      checkManifestFiles(m);
      if (!m.problems.empty()) {
        std::string report = plan.manifestPath + ": " + std::to_string(m.problems.size()) +
                             " problem(s) in the manifest:";
        for (const auto& p : m.problems) report += "\n  " + p.describe();
        if (!plan.skipInvalid) {
          error = report + "\nfix them, or pass --skip-invalid to record them as failed and go on";
        } else {
          spdlog::warn("{}\n(--skip-invalid: recorded as failed)", report);
        }
      }
      // Shard over manifest order (valid and invalid lines together), so slices are stable.
      struct Line {
        size_t line;
        VideoEntry entry;
        std::string reason;  // empty: valid
      };
      std::vector<Line> all;
      for (size_t i = 0; i < m.entries.size(); ++i) all.push_back({m.lines[i], m.entries[i], ""});
      for (const auto& p : m.problems) {
        auto it = std::find_if(m.invalid.begin(), m.invalid.end(), [&](const VideoEntry& e) {
          return e.videoId == p.videoId && e.path == p.path;
        });
        if (it != m.invalid.end()) all.push_back({p.line, *it, p.reason});
      }
      std::sort(all.begin(), all.end(),
                [](const Line& a, const Line& b) { return a.line < b.line; });
      const size_t n = all.size();
      const size_t from = n * size_t(plan.shardIndex) / size_t(plan.shardCount);
      const size_t to = n * size_t(plan.shardIndex + 1) / size_t(plan.shardCount);
      for (size_t i = from; i < to; ++i) {
        if (all[i].reason.empty()) {
          out.valid.push_back(all[i].entry);
        } else {
          out.invalid.push_back(all[i].entry);
          out.invalidReasons.push_back(all[i].reason);
        }
      }
      if (plan.shardCount > 1) {
        spdlog::info("shard {}/{}: manifest lines {}..{} of {}", plan.shardIndex, plan.shardCount,
                     from, to, n);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  shareVerdict(error, comm);
  out.valid = broadcastEntries(out.valid, 0, comm);
  out.invalid = broadcastEntries(out.invalid, 0, comm);
  out.invalidReasons = broadcastStrings(out.invalidReasons, 0, comm);
  return out;
}

}  // namespace

ExtractionSummary runExtraction(const ExtractionPlan& plan, FeatureModel& model, MPI_Comm comm) {
  return runExtraction(plan, std::vector<FeatureModel*>{&model}, comm);
}

ExtractionSummary runExtraction(const ExtractionPlan& plan,
                                const std::vector<FeatureModel*>& models, MPI_Comm comm) {
  const auto t0 = Clock::now();
  const int rank = commRank(comm), size = commSize(comm);
  if (plan.shardCount < 1 || plan.shardIndex < 0 || plan.shardIndex >= plan.shardCount) {
    throw Error("--shard K/N needs 0 <= K < N, got " + std::to_string(plan.shardIndex) + "/" +
                std::to_string(plan.shardCount));
  }
  requireRanksAgree(plan.meta, comm);  // same config and checkpoint everywhere, before any output
  // One writer: rank 0 holds <output>.lock for the whole run; a live holder refuses it at once.
  std::unique_ptr<OutputLock> lock =
      plan.outputLocked ? nullptr : lockOutput(plan.outputPath, comm);
  SharedManifest manifest = readAndShare(plan, comm);

  // Output: created, resumed, repaired or rebuilt from the journals (src/store/recovery.cpp).
  std::vector<StoredVideo> stored;
  std::optional<FeatureStore> store;
  LeakOnUnwind<FeatureStore> keepStore(
      store);                 // a rank throwing alone must not close it (collective)
  double writeSeconds = 0.0;  // this rank's time inside HDF5 and the journal (open, waves, close)
  auto tWrite = Clock::now();
  OutputPlan outputPlan{plan.outputPath, plan.meta, plan.overwrite, plan.retryFailed,
                        manifest.valid};
  outputPlan.videos.insert(outputPlan.videos.end(), manifest.invalid.begin(),
                           manifest.invalid.end());
  OpenedOutput output = openOutput(outputPlan, comm);
  store.emplace(std::move(*output.store));
  stored = std::move(output.stored);
  JournalWriter& journal = output.journal;
  if (rank == 0 && !stored.empty())
    spdlog::info("{}: resuming ({} videos recorded)", plan.outputPath, stored.size());
  std::map<std::string, int64_t> rowOf;
  std::map<int64_t, std::string> idOfRow;
  for (size_t i = 0; i < stored.size(); ++i) rowOf[stored[i].videoId] = int64_t(i);
  std::vector<VideoEntry> added;
  for (const auto* list : {&manifest.valid, &manifest.invalid}) {
    for (const auto& e : *list) {
      if (!rowOf.count(e.videoId)) {
        rowOf[e.videoId] = -1;  // placeholder, set below
        added.push_back(e);
      }
    }
  }
  // Rows are assigned in manifest order across both lists, the same on every rank.
  const int64_t firstNew = store->addVideos(added);
  writeSeconds += std::chrono::duration<double>(Clock::now() - tWrite).count();
  for (size_t i = 0; i < added.size(); ++i) rowOf[added[i].videoId] = firstNew + int64_t(i);
  for (const auto& [id, row] : rowOf) idOfRow[row] = id;
  std::map<int64_t, std::string> pathOfRow;
  for (const auto* list : {&manifest.valid, &manifest.invalid}) {
    for (const auto& e : *list) pathOfRow.emplace(rowOf.at(e.videoId), e.path);
  }
  auto statusOf = [&](const std::string& id) {
    int64_t row = rowOf.at(id);
    return row < int64_t(stored.size()) ? stored[size_t(row)].status : VideoStatus::Pending;
  };
  auto wanted = [&](const std::string& id) {
    VideoStatus s = statusOf(id);
    return s == VideoStatus::Pending || (s == VideoStatus::Failed && plan.retryFailed);
  };

  ExtractionSummary summary;
  summary.videos = int64_t(manifest.valid.size() + manifest.invalid.size());
  std::vector<VideoResult> buffer;
  int64_t failedHere = 0;
  // Manifest problems are recorded by rank 0 in the first wave.
  for (size_t i = 0; i < manifest.invalid.size(); ++i) {
    const auto& e = manifest.invalid[i];
    if (!wanted(e.videoId)) {
      ++summary.failedBefore;
      continue;
    }
    ++failedHere;
    if (rank != 0) continue;
    VideoResult r;
    r.videoRow = rowOf.at(e.videoId);
    r.status = VideoStatus::Failed;
    r.failureStage = "manifest";
    r.error = e.path + ": " + manifest.invalidReasons[i];
    journal.result(e.videoId, e.path, rank, r);
    buffer.push_back(std::move(r));
  }
  std::vector<int64_t> pending;
  for (size_t i = 0; i < manifest.valid.size(); ++i) {
    if (wanted(manifest.valid[i].videoId)) {
      pending.push_back(int64_t(i));
    } else if (statusOf(manifest.valid[i].videoId) == VideoStatus::Complete) {
      ++summary.skipped;
    } else {
      ++summary.failedBefore;  // failed in an earlier run, not retried
    }
  }
  if (rank == 0) {
    spdlog::info("{} videos: {} to extract, {} already complete, {} invalid, {} failed before{}",
                 summary.videos, pending.size(), summary.skipped, failedHere, summary.failedBefore,
                 summary.failedBefore > 0 && !plan.retryFailed ? " (--retry-failed to retry)" : "");
  }

  // Cost estimates, probed in parallel (each rank a strided share), then summed everywhere.
  std::vector<double> costs(pending.size(), 0.0);
  for (size_t i = size_t(rank); i < pending.size(); i += size_t(size)) {
    costs[i] = probeVideo(manifest.valid[size_t(pending[i])].path).cost();
  }
  MPI_Allreduce(MPI_IN_PLACE, costs.data(), int(costs.size()), MPI_DOUBLE, MPI_SUM, comm);
  std::vector<int64_t> order;
  for (int64_t k : longestFirst(costs)) order.push_back(pending[size_t(k)]);

  WorkQueue queue(order, comm);
  WaveSync sync(comm);
  // From here on every rank takes part in a collective step (a WaveSync round) between two forward
  // passes: a silence of plan.watchdogSeconds means a rank is stuck, and the job is aborted.
  Watchdog watchdog(plan.watchdogSeconds);
  VideoExtractor extractor(models, plan.extract);
  auto lastWave = Clock::now();
  int64_t complete = 0, failed = 0, segments = 0, done = 0;
  size_t bufferedBytes = 0;  // feature bytes in `buffer`
  auto wantWave = [&] {
    if (buffer.empty()) return false;
    double held = std::chrono::duration<double>(Clock::now() - lastWave).count();
    return int(buffer.size()) >= plan.waveVideos || held >= plan.waveSeconds ||
           double(bufferedBytes) >= plan.waveMegabytes * 1e6;
  };
  auto writeWave = [&] {
    const auto w0 = Clock::now();
    // The wave's results are on disk in the journal before the file is touched; a rank whose
    // journal cannot be synced stops every rank here, before the collective write.
    std::string journalError;
    try {
      journal.sync();
    } catch (const std::exception& e) {
      journalError = e.what();
    }
    agreeOrThrow(journalError, comm);
    store->writeWave(buffer);  // collective
    buffer.clear();
    bufferedBytes = 0;
    lastWave = Clock::now();
    watchdog.tick("a wave");
    writeSeconds += std::chrono::duration<double>(lastWave - w0).count();
  };
  // Progress counts the videos attempted by this run, over all ranks (totals ride on WaveSync).
  ProgressReporter progress(int64_t(pending.size()), rank == 0);
  auto progressSoFar = [&] { return WaveSync::Progress{done, failed, extractor.clipsProcessed()}; };
  // Wave, Finish and Stop all write the videos finished so far (Stop: a signal reached some rank;
  // every rank sees it in the same round, so all write this last wave together and stop).
  auto act = [&](WaveSync::Action a) {
    if (sync.roundCompleted()) {
      watchdog.tick("a wave-sync round");
      progress.update(sync.total().videosDone, sync.total().videosFailed, sync.total().clips);
    }
    if (a != WaveSync::Action::None) writeWave();
    return a;
  };
  const auto safePoint = [&] {
    return act(sync.poll(wantWave(), false, false, progressSoFar(), stopRequested()));
  };

  // Videos go to the extractor's decode worker as it becomes free; this thread batches their
  // clips through the model and takes part in waves between batches.
  bool outOfWork = false, stopped = false;
  while (true) {
    // A stop signal: take no new video (the ranks agree on the stop at the next round).
    while (!outOfWork && !stopRequested() && extractor.wantsWork()) {
      const int64_t item = queue.next();
      if (item < 0) {
        outOfWork = true;
        break;
      }
      const VideoEntry& e = manifest.valid[size_t(item)];
      journal.attempt(e.videoId);  // synced before the first byte is decoded (crash attribution)
      extractor.submit(e, rowOf.at(e.videoId));
    }
    if (outOfWork && extractor.idle()) break;
    for (VideoResult& r : extractor.step(std::chrono::milliseconds(50))) {
      ++done;
      if (r.status == VideoStatus::Failed) {
        ++failed;
      } else {
        ++complete;
        segments += int64_t(r.segments.size());
        if (logEachVideo()) {  // -v: one line per video (10,000 lines for a 10k-video job
                               // otherwise)
          spdlog::info("{}: {} frames, {} segments", idOfRow.at(r.videoRow), r.decodedFrames,
                       r.segments.size());
        }
      }
      journal.result(idOfRow.at(r.videoRow), pathOfRow.at(r.videoRow), rank,
                     r);  // synced before the wave
      bufferedBytes += r.features.size() * sizeof(float);
      buffer.push_back(std::move(r));
    }
    if (safePoint() == WaveSync::Action::Stop) {
      stopped = true;
      break;
    }
  }
  // Out of work: keep joining waves until every rank is out of work, then the last wave.
  while (!stopped) {
    const WaveSync::Action a =
        act(sync.poll(wantWave(), true, true, progressSoFar(), stopRequested()));
    if (a == WaveSync::Action::Finish) break;
    stopped = a == WaveSync::Action::Stop;
  }
  progress.finish();
  if (stopped) {
    summary.interrupted = true;
    if (rank == 0) {
      spdlog::warn(
          "stopped by a signal ({}): the videos finished so far are written, those in flight are "
          "left "
          "for the rerun (exit code {}: rerun the same command to resume)",
          stopRequested() ? std::string(signalName(stopSignal())) + " on rank 0"
                          : "on another rank",
          kInterrupted);
    }
  }
  tWrite = Clock::now();
  const double journalSeconds = journal.seconds();
  const int64_t journalBytes = journal.bytes();
  finishOutput(output, *store, plan.outputPath,
               comm);  // journal CLOSE, file close, journals removed when complete
  writeSeconds += std::chrono::duration<double>(Clock::now() - tWrite).count();
  summary.writeSeconds = writeSeconds;
  {
    double j[2] = {journalSeconds, double(journalBytes)}, jmax[2];
    MPI_Allreduce(j, jmax, 2, MPI_DOUBLE, MPI_MAX, comm);
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rank == 0) {
      spdlog::info(
          "journal: {:.3f} s writing and syncing (slowest rank; {:.2f}% of {:.1f} s; its syncs "
          "before "
          "the waves are also in the writing seconds), {:.1f} MB{}",
          jmax[0], 100.0 * jmax[0] / std::max(1e-9, wall), wall, jmax[1] / 1e6,
          output.replayed
              ? fmt::format("; {} results replayed from earlier journals", output.replayed)
              : "");
    }
  }

  long long mine[4] = {complete, failed, segments, extractor.clipsProcessed()}, totals[4];
  MPI_Allreduce(mine, totals, 4, MPI_LONG_LONG, MPI_SUM, comm);
  summary.complete = totals[0];
  summary.failed = totals[1] + failedHere;
  summary.segments = totals[2];
  summary.clips = totals[3];
  const auto& timing = extractor.timing();
  double mineSeconds[4] = {timing.busySeconds, timing.modelSeconds, timing.starvedSeconds,
                           writeSeconds};
  std::vector<double> allSeconds(size_t(size) * 4);
  MPI_Allgather(mineSeconds, 4, MPI_DOUBLE, allSeconds.data(), 4, MPI_DOUBLE, comm);
  for (int r = 0; r < size; ++r) {
    summary.busySeconds.push_back(allSeconds[size_t(r) * 4]);
    summary.modelSeconds.push_back(allSeconds[size_t(r) * 4 + 1]);
    summary.starvedSeconds.push_back(allSeconds[size_t(r) * 4 + 2]);
    summary.storeSeconds.push_back(allSeconds[size_t(r) * 4 + 3]);
  }
  long long taken = done;
  std::vector<long long> perRank(static_cast<size_t>(size));
  MPI_Allgather(&taken, 1, MPI_LONG_LONG, perRank.data(), 1, MPI_LONG_LONG, comm);
  summary.videosPerRank.assign(perRank.begin(), perRank.end());
  long long myClips = extractor.clipsProcessed();
  std::vector<long long> clipsPerRank(static_cast<size_t>(size));
  MPI_Allgather(&myClips, 1, MPI_LONG_LONG, clipsPerRank.data(), 1, MPI_LONG_LONG, comm);
  summary.clipsPerRank.assign(clipsPerRank.begin(), clipsPerRank.end());
  summary.wallSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary;
}

}  // namespace vidfeat
