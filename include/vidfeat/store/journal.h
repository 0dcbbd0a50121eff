#pragma once
// The journal: what makes the output survive a crash (docs/DESIGN.md, "Crash safety").
//
// HDF5 1.10 has no journaling and parallel HDF5 no SWMR, so a kill inside a metadata flush can
// leave the output unreadable whatever the order of writes. The output therefore does not have to
// survive a crash: every rank appends each finished video to its own append-only journal beside
// the output, `<output>.journal/rank-<R>-<runid>.vfj`, and fdatasync()s it before the wave's
// collective write. On the next start the journals are read; a file that does not validate is
// rebuilt from them and one that lags them is brought up to date (src/store/recovery.cpp).
//
// Records are keyed by video id, never by /videos row (rows change on a rebuild). One file:
//   record := magic u32 "VFJ1" | type u32 | payload length u64 | payload | crc32 u32
// (little-endian; the CRC-32 covers type, length and payload). A record cut short or failing its
// CRC ends the file: it was being written when the process died (a video in flight). Types:
//   HEADER  (first record) format version, run id, rank, the run's provenance (FileMetadata): a
//           journal of another model/config/checkpoint is refused, never mixed in;
//   BASE    the journals of this output cover everything in it: written by the run that created
//           the file, at the end of a snapshot of an existing file, or after a rebuild;
//   ATTEMPT a video is about to be decoded (before any byte of it is read);
//   RESULT  a finished video: id, path, rank, status, fps, frames, duration, decode errors, error,
//           failure stage, segments, features;
//   CLOSE   the process ended its run normally or stopped on an error: its open attempts were
//           not crashes.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// A video's result as journaled (VideoResult::videoRow is not stored: it is -1 when read back).
struct JournaledResult {
  std::string videoId;
  std::string path;
  int32_t rank = 0;
  VideoResult result;
};

// "<output>.journal": the folder of the journals of `outputPath`.
std::string journalDirOf(const std::string& outputPath);

// Message for a failed write/fsync/rename on `path` with `err` (an errno): "disk full: cannot
// write <path>: No space left on device" for ENOSPC and EDQUOT, else "I/O error on <path>:
// <strerror>".
std::string ioErrorMessage(const std::string& path, int err, const std::string& doing = "write");

// One process's append-only journal. Every write and fsync is checked: a failure throws Error
// (ioErrorMessage) and leaves the writer unusable (the record it was writing is torn; the reader
// stops there). Not thread-safe: the rank's main thread owns it.
class JournalWriter {
 public:
  JournalWriter() = default;  // inactive: every call is a no-op
  // Creates `dir`/`name` (exclusive) and writes and syncs its HEADER.
  static JournalWriter create(const std::string& dir, const std::string& name,
                              const std::string& runId, int rank, const FileMetadata& meta);
  JournalWriter(JournalWriter&& other) noexcept;
  JournalWriter& operator=(JournalWriter&& other) noexcept;
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;
  // Closes the descriptor. While an exception unwinds (an error stopped the run, no crash) it first
  // appends CLOSE, best effort; otherwise no CLOSE (that is close()'s promise).
  ~JournalWriter();

  bool active() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // Appends an ATTEMPT record and syncs it (before the video is decoded).
  void attempt(const std::string& videoId);
  // Appends a RESULT record (not synced: sync() does that before the wave's write).
  void result(const std::string& videoId, const std::string& videoPath, int32_t rank,
              const VideoResult& r);
  void base();  // appends a BASE record and syncs
  void sync();  // fdatasync
  // Appends CLOSE, syncs and closes.
  void close();

  double seconds() const { return seconds_; }  // time spent writing and syncing
  int64_t bytes() const { return bytes_; }

 private:
  void append(uint32_t type, const std::string& payload);
  void fail(int err, const char* doing);
  int fd_ = -1;
  std::string path_;
  double seconds_ = 0.0;
  int64_t bytes_ = 0;
  bool dirty_ = false;
};

// What the journals of an output say, as an index: the results stay on disk until loaded.
struct JournalIndex {
  struct Entry {
    std::string videoId;
    std::string path;
    VideoStatus status = VideoStatus::Pending;
    int64_t segments = 0;
    int64_t decodedFrames = 0;
    size_t file = 0;      // in `files`
    uint64_t offset = 0;  // of the record's payload
    uint64_t length = 0;
  };
  std::vector<std::string> files;  // every journal read, oldest run first
  std::map<std::string, Entry>
      results;  // by video id: the one that counts (complete over failed, else the latest)
  // By video id: how many processes ended (without CLOSE) while it was attempted and unfinished.
  std::map<std::string, int> crashes;
  bool covers = false;  // some journal has a BASE record
  int64_t records = 0;
  int64_t tornRecords = 0;  // records cut short or failing their CRC (each ends its file)
};

// Reads every `*.vfj` of `dir` (no folder: an empty index). Throws Error naming the journal when
// its HEADER records a different provenance than `meta` (metadataDifferences).
JournalIndex scanJournals(const std::string& dir, const FileMetadata& meta);

// Loads one indexed result (its CRC was checked by the scan; read again and checked again).
JournaledResult loadResult(const JournalIndex& index, const JournalIndex::Entry& entry);

// Removes `dir` crash-safely: renamed to "<dir>.done-<suffix>" first (atomic), then deleted; a
// leftover "*.done-*" folder is garbage that removeFinishedJournals deletes.
void removeJournals(const std::string& dir, const std::string& suffix);
void removeFinishedJournals(const std::string& dir);

// CRC-32 (IEEE 802.3, as zlib's crc32), exposed for tests.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace vidfeat
