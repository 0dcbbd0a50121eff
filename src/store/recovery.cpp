#include "vidfeat/store/recovery.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "vidfeat/common/error.h"
#include "vidfeat/mpi/broadcast.h"
#include "vidfeat/mpi/mpi_session.h"

namespace vidfeat {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Results replayed from the journals go into the file in collective waves of at most this many
// bytes of features on rank 0 (the others contribute nothing), so a rebuild of a large output
// never holds it in memory.
constexpr size_t kReplayBytes = size_t(64) << 20;

// Sortable by time, unique per job: "20260101T120000.123456789-<pid>-<random>".
std::string newRunId() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%S", &tm);
  char text[96];
  std::snprintf(text, sizeof text, "%s.%09ld-%d-%08x", when, ts.tv_nsec, int(getpid()),
                unsigned(std::random_device{}()));
  return text;
}

enum class Mode : int { Create = 0, Resume = 1, Rebuild = 2 };

// Rank 0's plan, broadcast as text lines.
struct Decision {
  Mode mode = Mode::Create;
  bool snapshot = false;  // write a base journal of the file before touching it
};

// Writes results in collective waves; rank 0 passes `results` (id -> row resolved by `rowOf`),
// the other ranks nothing. Returns the number written.
int64_t replay(FeatureStore& store, const JournalIndex& index,
               const std::vector<const JournalIndex::Entry*>& entries,
               const std::vector<VideoResult>& extra, const std::map<std::string, int64_t>& rowOf,
               int rank, MPI_Comm comm) {
  size_t next = 0, nextExtra = 0;
  int64_t written = 0;
  while (true) {
    std::vector<VideoResult> batch;
    if (rank == 0) {
      size_t bytes = 0;
      while (nextExtra < extra.size()) batch.push_back(extra[nextExtra++]);
      while (next < entries.size() && bytes < kReplayBytes) {
        JournaledResult j = loadResult(index, *entries[next++]);
        j.result.videoRow = rowOf.at(j.videoId);
        bytes += j.result.features.size() * sizeof(float) + 64;
        batch.push_back(std::move(j.result));
      }
    }
    int n = int(batch.size());
    MPI_Bcast(&n, 1, MPI_INT, 0, comm);
    if (n == 0) break;
    store.writeWave(batch);
    written += n;
  }
  return written;
}

FeatureStore createGuarded(const std::string& path, MPI_Comm comm, const FileMetadata& meta) {
  try {
    return FeatureStore::create(path, comm, meta);
  } catch (const CollectiveError&) {
    throw;
  } catch (const Error& e) {
    throw Error(describeWriteFailure(path, e.what()));
  }
}

}  // namespace

void agreeOrThrow(const std::string& error, MPI_Comm comm) {
  const int rank = commRank(comm), size = commSize(comm);
  int mine = error.empty() ? size : rank, first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  std::string message = error;
  broadcastString(message, first, comm);
  if (size > 1 && rank != first) message = "rank " + std::to_string(first) + ": " + message;
  throw CollectiveError(message);
}

OpenedOutput openOutput(const OutputPlan& plan, MPI_Comm comm) {
  const auto t0 = Clock::now();
  const int rank = commRank(comm);
  const std::string dir = journalDirOf(plan.path);
  OpenedOutput out;
  // A rank throwing alone (an I/O error) must not close a file collectively on its way out.
  LeakOnUnwind<FeatureStore> keepStore(out.store);
  std::optional<FeatureStore> fresh;
  LeakOnUnwind<FeatureStore> keepFresh(fresh);
  out.runId = rank == 0 ? newRunId() : std::string();
  broadcastString(out.runId, 0, comm);

  // ---- rank 0 looks at what is there and decides ----
  Decision decision;
  JournalIndex index;
  StoreSummary file;
  bool fileValid = false;
  std::string error;
  if (rank == 0) {
    try {
      removeFinishedJournals(dir);
      if (plan.overwrite) {
        removeJournals(dir, out.runId);
      } else {
        index = scanJournals(dir, plan.meta);
        if (!index.files.empty()) {
          spdlog::info(
              "{}: {} journal(s), {} results{}", dir, index.files.size(), index.results.size(),
              index.tornRecords
                  ? fmt::format(", {} cut short by a crash (in flight: redone)", index.tornRecords)
                  : "");
        }
      }
      std::error_code ec;
      const bool exists = !plan.overwrite && fs::exists(plan.path, ec);
      std::string invalid;
      if (exists) {
        try {
          file = readStoreSummary(plan.path);
          fileValid = true;
        } catch (const std::exception& e) {
          invalid = e.what();
        }
      }
      if (fileValid) {
        auto diffs = metadataDifferences(file.meta, plan.meta);
        if (!diffs.empty()) {
          error = plan.path +
                  " was written with different settings, so its features could not be "
                  "mixed with this run's (pass --overwrite to start afresh):";
          for (const auto& d : diffs) error += "\n  " + d;
        }
        decision.mode = Mode::Resume;
        if (!index.covers) {
          // A finished file (its journals were removed): protect what it holds before the first
          // write, if this run writes at all.
          decision.snapshot = !index.results.empty() || !index.crashes.empty();
          std::map<std::string, VideoStatus> status;
          for (const auto& v : file.videos) status[v.videoId] = v.status;
          for (const auto& e : plan.videos) {
            auto it = status.find(e.videoId);
            if (it == status.end() || it->second == VideoStatus::Pending ||
                (it->second == VideoStatus::Failed && plan.retryFailed)) {
              decision.snapshot = true;
              break;
            }
          }
        }
      } else if (exists && !index.covers) {
        error =
            "cannot resume: " + invalid +
            (index.files.empty() ? " (and there are no journals in " + dir + " to rebuild it from)"
                                 : " (and the journals in " + dir + " do not cover it)") +
            "; pass --overwrite to start afresh";
      } else if (exists || !index.results.empty()) {
        decision.mode = Mode::Rebuild;
        if (exists)
          spdlog::warn("{}: {}; rebuilding it from the journals", plan.path, invalid);
        else
          spdlog::warn("{}: missing; rebuilding it from the journals in {}", plan.path, dir);
      } else {
        decision.mode = Mode::Create;
      }
      if (error.empty()) fs::create_directories(dir);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agreeOrThrow(error, comm);
  int words[2] = {int(decision.mode), decision.snapshot ? 1 : 0};
  MPI_Bcast(words, 2, MPI_INT, 0, comm);
  decision.mode = Mode(words[0]);
  decision.snapshot = words[1] != 0;

  // ---- this run's journals: before anything is written to the file ----
  error.clear();
  try {
    out.journal = JournalWriter::create(
        dir, "rank-" + std::to_string(rank) + "-" + out.runId + ".vfj", out.runId, rank, plan.meta);
    // A file created now is covered by the journals from its first byte.
    if (rank == 0 && decision.mode != Mode::Resume) out.journal.base();
  } catch (const std::exception& e) {
    error = e.what();
  }
  agreeOrThrow(error, comm);

  if (decision.snapshot) {
    error.clear();
    if (rank == 0) {
      try {
        const auto s0 = Clock::now();
        JournalWriter base =
            JournalWriter::create(dir, "base-" + out.runId + ".vfj", out.runId, -1, plan.meta);
        StoreReader reader(plan.path);
        const StoreSummary& sum = reader.summary();
        const std::vector<std::string> stageOf = sum.lastFailureStages();
        std::vector<SegmentRecord> segs;
        int64_t n = 0;
        for (size_t row = 0; row < sum.videos.size(); ++row) {
          const StoredVideo& v = sum.videos[row];
          if (v.status == VideoStatus::Pending) continue;
          VideoResult r;
          static_cast<VideoOutcome&>(r) = v;
          if (v.status == VideoStatus::Failed) r.failureStage = stageOf[row];
          if (v.segmentCount > 0)
            reader.readRows(v.firstRow, v.segmentCount, r.segments, r.features);
          base.result(v.videoId, v.path, -1, r);
          ++n;
        }
        base.base();
        base.close();
        spdlog::info(
            "{}: a finished file gets new work: its {} videos copied into {} first ({:.2f} s, "
            "{:.1f} MB)",
            plan.path, n, base.path(), std::chrono::duration<double>(Clock::now() - s0).count(),
            base.bytes() / 1e6);
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    agreeOrThrow(error, comm);
  }

  // ---- the file ----
  std::map<std::string, int64_t> rowOf;
  std::vector<const JournalIndex::Entry*> toWrite;  // rank 0: journal results the file lacks
  if (decision.mode == Mode::Create) {
    out.store.emplace(createGuarded(plan.path, comm, plan.meta));
  } else if (decision.mode == Mode::Rebuild) {
    const std::string temp = plan.path + ".rebuild";
    fresh.emplace(createGuarded(temp, comm, plan.meta));
    // Rows: this manifest's videos, then journaled videos it does not list (an earlier manifest's).
    std::vector<VideoEntry> rows;
    for (const auto& e : plan.videos) {
      if (rowOf.count(e.videoId)) continue;  // --skip-invalid keeps a duplicate id's line: one row
      rowOf[e.videoId] = int64_t(rows.size());
      rows.push_back(e);
    }
    if (rank == 0) {
      std::vector<VideoEntry> extra;
      for (const auto& [id, entry] : index.results) {
        if (!rowOf.count(id)) extra.push_back({id, entry.path});
      }
      rows.insert(rows.end(), extra.begin(), extra.end());
    }
    rows = broadcastEntries(rows, 0, comm);
    rowOf.clear();
    for (size_t i = 0; i < rows.size(); ++i) rowOf[rows[i].videoId] = int64_t(i);
    fresh->addVideos(rows);
    if (rank == 0) {
      for (const auto& [id, entry] : index.results) toWrite.push_back(&entry);
    }
    out.replayed = replay(*fresh, index, toWrite, {}, rowOf, rank, comm);
    fresh->close();
    fresh.reset();
    error.clear();
    if (rank == 0 && ::rename(temp.c_str(), plan.path.c_str()) < 0)
      error = ioErrorMessage(plan.path, errno, "rename");
    agreeOrThrow(error, comm);
    if (rank == 0)
      spdlog::info("{}: rebuilt from the journals ({} results)", plan.path, out.replayed);
    out.rebuilt = true;
    toWrite.clear();
  }
  if (decision.mode != Mode::Create) {
    out.store.emplace(FeatureStore::resume(plan.path, comm, plan.meta, out.stored));
    rowOf.clear();
    for (size_t i = 0; i < out.stored.size(); ++i) rowOf[out.stored[i].videoId] = int64_t(i);
  }

  // ---- lag: journal results the file does not show; crashes ----
  std::vector<VideoResult> crashFailures;  // rank 0
  std::string patches;                     // rank 0: "row status\n" lines for every rank's table
  if (rank == 0 && decision.mode == Mode::Resume) {
    for (const auto& [id, entry] : index.results) {
      auto it = rowOf.find(id);
      if (it == rowOf.end())
        continue;  // not in this file (cannot happen: a journaled video had a row)
      const StoredVideo& v = out.stored[size_t(it->second)];
      const bool behind =
          entry.status == VideoStatus::Complete
              ? (v.status != VideoStatus::Complete || v.segmentCount != entry.segments ||
                 v.decodedFrames != entry.decodedFrames)
              : v.status == VideoStatus::Pending;
      if (behind) toWrite.push_back(&entry);
    }
  }
  if (rank == 0) {
    std::set<std::string> listed;
    for (const auto& e : plan.videos) listed.insert(e.videoId);
    for (const auto& [id, n] : index.crashes) {
      auto it = rowOf.find(id);
      if (n < 2 || it == rowOf.end() || !listed.count(id)) continue;
      const StoredVideo& v = out.stored[size_t(it->second)];
      if (v.status == VideoStatus::Complete ||
          (v.status == VideoStatus::Failed && !plan.retryFailed))
        continue;
      VideoResult r;
      r.videoRow = it->second;
      r.status = VideoStatus::Failed;
      r.failureStage = "crash";
      r.error = v.path + ": crashed the process twice (" + std::to_string(n) +
                " runs ended while it was being extracted); not tried again (--retry-failed tries "
                "it once more)";
      spdlog::warn("{}: {}", id, r.error);
      out.journal.result(id, v.path, rank, r);
      crashFailures.push_back(std::move(r));
    }
    out.journal.sync();
    for (const auto* e : toWrite)
      patches += std::to_string(rowOf.at(e->videoId)) + " " + std::to_string(int(e->status)) + "\n";
    for (const auto& r : crashFailures) patches += std::to_string(r.videoRow) + " 2\n";
    if (!toWrite.empty())
      spdlog::info("{}: {} journaled results the file lacks are written first", plan.path,
                   toWrite.size());
  }
  out.crashFailed = int64_t(crashFailures.size());
  out.replayed += replay(*out.store, index, toWrite, crashFailures, rowOf, rank, comm);
  broadcastString(patches, 0, comm);
  std::istringstream lines(patches);
  int64_t row;
  int status;
  while (lines >> row >> status) out.stored.at(size_t(row)).status = VideoStatus(status);
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

void finishOutput(OpenedOutput& out, FeatureStore& store, const std::string& path, MPI_Comm comm) {
  const int rank = commRank(comm);
  std::string error;
  try {
    out.journal.close();
  } catch (const std::exception& e) {
    error = e.what();
  }
  agreeOrThrow(error, comm);
  store.close();
  int closed = 1, all = 0;
  MPI_Allreduce(&closed, &all, 1, MPI_INT, MPI_MIN, comm);
  if (rank != 0) return;
  try {
    StoreSummary sum = readStoreSummary(path);
    for (const auto& v : sum.videos) {
      if (v.status == VideoStatus::Pending) return;  // more work to come: the journals stay
    }
    removeJournals(journalDirOf(path), out.runId);
  } catch (const std::exception& e) {
    spdlog::warn("{}: journals kept ({})", path, e.what());
  }
}

}  // namespace vidfeat
