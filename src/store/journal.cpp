#include "vidfeat/store/journal.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>

#include "vidfeat/common/error.h"

namespace vidfeat {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kMagic = 0x314A4656;  // "VFJ1" little-endian
constexpr uint32_t kFormat = 1;
enum RecordType : uint32_t { kHeader = 1, kBase = 2, kAttempt = 3, kResult = 4, kClose = 5 };
constexpr size_t kFrameBytes = 16;  // magic, type, length
// A record larger than this is not one we wrote (a torn length field): the file ends there.
constexpr uint64_t kMaxPayload = uint64_t(1) << 34;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the journal format is little-endian");

using Clock = std::chrono::steady_clock;

// ---- payload encoding ----
struct Out {
  std::string bytes;
  template <class T>
  void pod(T v) {
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    pod(uint32_t(s.size()));
    bytes += s;
  }
};

struct In {
  const char* p;
  const char* end;
  template <class T>
  T pod() {
    T v;
    need(sizeof v);
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  std::string str() {
    uint32_t n = pod<uint32_t>();
    need(n);
    std::string s(p, n);
    p += n;
    return s;
  }
  void need(size_t n) const {
    if (size_t(end - p) < n) throw Error("journal record shorter than its content");
  }
};

void putMeta(Out& o, const FileMetadata& m) {
  for (const std::string* s : {&m.modelName, &m.modelArch, &m.configYaml, &m.checkpointPath,
                               &m.checkpointSha256, &m.weights, &m.tailPolicy, &m.featureName}) {
    o.str(*s);
  }
  o.pod(m.featureDim);
  o.pod(m.crops);
  o.pod(m.numFrames);
  o.pod(m.samplingRate);
  o.pod(m.stride);
  o.pod(m.targetFps);
}

FileMetadata getMeta(In& in) {
  FileMetadata m;
  for (std::string* s : {&m.modelName, &m.modelArch, &m.configYaml, &m.checkpointPath,
                         &m.checkpointSha256, &m.weights, &m.tailPolicy, &m.featureName}) {
    *s = in.str();
  }
  m.featureDim = in.pod<int64_t>();
  m.crops = in.pod<int32_t>();
  m.numFrames = in.pod<int32_t>();
  m.samplingRate = in.pod<int32_t>();
  m.stride = in.pod<int32_t>();
  m.targetFps = in.pod<double>();
  return m;
}

JournaledResult getResult(In& in) {
  JournaledResult j;
  j.videoId = in.str();
  j.path = in.str();
  j.rank = in.pod<int32_t>();
  VideoResult& r = j.result;
  int8_t status = in.pod<int8_t>();
  if (status != int8_t(VideoStatus::Complete) && status != int8_t(VideoStatus::Failed)) {
    throw Error("journal result with status " + std::to_string(status));
  }
  r.status = VideoStatus(status);
  r.fps = in.pod<double>();
  r.decodedFrames = in.pod<int64_t>();
  r.duration = in.pod<double>();
  r.decodeErrors = in.pod<int64_t>();
  r.error = in.str();
  r.failureStage = in.str();
  uint64_t segments = in.pod<uint64_t>();
  in.need(segments * (4 + 8 + 8 + 8 + 8 + 4));
  r.segments.resize(segments);
  for (auto& s : r.segments) {
    s.index = in.pod<int32_t>();
    s.firstFrame = in.pod<int64_t>();
    s.lastFrame = in.pod<int64_t>();
    s.startTime = in.pod<double>();
    s.endTime = in.pod<double>();
    s.paddedFrames = in.pod<int32_t>();
  }
  uint64_t floats = in.pod<uint64_t>();
  in.need(floats * sizeof(float));
  r.features.resize(floats);
  if (floats) std::memcpy(r.features.data(), in.p, floats * sizeof(float));
  in.p += floats * sizeof(float);
  return j;
}

// Reads exactly `n` bytes at `offset`; false when the file ends first.
bool readAt(int fd, uint64_t offset, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
    offset += uint64_t(got);
  }
  return true;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

}  // namespace

uint32_t crc32(const void* data, size_t size, uint32_t crc) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::string journalDirOf(const std::string& outputPath) { return outputPath + ".journal"; }

std::string ioErrorMessage(const std::string& path, int err, const std::string& doing) {
  if (err == ENOSPC || err == EDQUOT) {
    return "disk full: cannot " + doing + " " + path + ": " + std::strerror(err) +
           " (free space, then rerun the same command: it resumes)";
  }
  return "I/O error on " + path + " (" + doing + "): " + std::strerror(err);
}

// ---- writer ----

JournalWriter JournalWriter::create(const std::string& dir, const std::string& name,
                                    const std::string& runId, int rank, const FileMetadata& meta) {
  JournalWriter w;
  w.path_ = (fs::path(dir) / name).string();
  w.fd_ = ::open(w.path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (w.fd_ < 0) throw Error(ioErrorMessage(w.path_, errno, "create"));
  Out o;
  o.pod(kFormat);
  o.str(runId);
  o.pod(int32_t(rank));
  putMeta(o, meta);
  w.append(kHeader, o.bytes);
  w.sync();
  return w;
}

JournalWriter::JournalWriter(JournalWriter&& other) noexcept { *this = std::move(other); }

JournalWriter& JournalWriter::operator=(JournalWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    seconds_ = other.seconds_;
    bytes_ = other.bytes_;
    dirty_ = other.dirty_;
  }
  return *this;
}

JournalWriter::~JournalWriter() {
  if (fd_ < 0) return;
  // Unwinding from an error (a full disk, an I/O error on the file, a bad input stopping the job):
  // the process did not crash, so its open attempts must not count as crashes. Best effort: on a
  // full disk the few bytes usually still fit in the journal's last block.
  if (std::uncaught_exceptions() > 0) {
    try {
      append(kClose, {});
      sync();
    } catch (...) {
    }
  }
  if (fd_ >= 0) ::close(fd_);
}

void JournalWriter::fail(int err, const char* doing) {
  ::close(fd_);
  fd_ = -1;  // the record being written is torn: nothing more may follow it
  throw Error(ioErrorMessage(path_, err, doing));
}

void JournalWriter::append(uint32_t type, const std::string& payload) {
  if (fd_ < 0) return;
  const auto t0 = Clock::now();
  std::string rec;
  rec.reserve(kFrameBytes + payload.size() + 4);
  uint64_t length = payload.size();
  uint32_t crc = 0;
  rec.append(reinterpret_cast<const char*>(&kMagic), 4);
  rec.append(reinterpret_cast<const char*>(&type), 4);
  rec.append(reinterpret_cast<const char*>(&length), 8);
  crc = vidfeat::crc32(rec.data() + 4, 12);
  crc = vidfeat::crc32(payload.data(), payload.size(), crc);
  rec += payload;
  rec.append(reinterpret_cast<const char*>(&crc), 4);
  const char* p = rec.data();
  size_t left = rec.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, "write");
    if (n == 0) fail(EIO, "write");
    p += n;
    left -= size_t(n);
  }
  bytes_ += int64_t(rec.size());
  dirty_ = true;
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

void JournalWriter::sync() {
  if (fd_ < 0 || !dirty_) return;
  const auto t0 = Clock::now();
  int rc;
  do {
    rc = ::fdatasync(fd_);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) fail(errno, "sync");
  dirty_ = false;
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

void JournalWriter::attempt(const std::string& videoId) {
  if (fd_ < 0) return;
  Out o;
  o.str(videoId);
  append(kAttempt, o.bytes);
  sync();
}

void JournalWriter::result(const std::string& videoId, const std::string& videoPath, int32_t rank,
                           const VideoResult& r) {
  if (fd_ < 0) return;
  Out o;
  o.bytes.reserve(256 + r.segments.size() * 40 + r.features.size() * sizeof(float));
  o.str(videoId);
  o.str(videoPath);
  o.pod(rank);
  o.pod(int8_t(r.status));
  o.pod(r.fps);
  o.pod(r.decodedFrames);
  o.pod(r.duration);
  o.pod(r.decodeErrors);
  o.str(r.error);
  o.str(r.failureStage);
  o.pod(uint64_t(r.segments.size()));
  for (const auto& s : r.segments) {
    o.pod(s.index);
    o.pod(s.firstFrame);
    o.pod(s.lastFrame);
    o.pod(s.startTime);
    o.pod(s.endTime);
    o.pod(s.paddedFrames);
  }
  o.pod(uint64_t(r.features.size()));
  o.bytes.append(reinterpret_cast<const char*>(r.features.data()),
                 r.features.size() * sizeof(float));
  append(kResult, o.bytes);
}

void JournalWriter::base() {
  append(kBase, {});
  sync();
}

void JournalWriter::close() {
  if (fd_ < 0) return;
  append(kClose, {});
  sync();
  if (::close(std::exchange(fd_, -1)) < 0) throw Error(ioErrorMessage(path_, errno, "close"));
}

// ---- reader ----

namespace {

struct RawRecord {
  uint32_t type;
  uint64_t offset;  // of the payload
  std::string payload;
};

// Reads the records of one journal until its end or the first torn one (returned in `torn`).
std::vector<RawRecord> readRecords(const std::string& path, bool& torn) {
  torn = false;
  std::vector<RawRecord> out;
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) throw Error("cannot read journal " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) < 0)
    throw Error("cannot read journal " + path + ": " + std::strerror(errno));
  const uint64_t size = uint64_t(st.st_size);
  uint64_t at = 0;
  while (at < size) {
    char frame[kFrameBytes];
    uint32_t magic, type;
    uint64_t length;
    if (size - at < kFrameBytes + 4 || !readAt(f.fd, at, frame, kFrameBytes)) {
      torn = true;
      break;
    }
    std::memcpy(&magic, frame, 4);
    std::memcpy(&type, frame + 4, 4);
    std::memcpy(&length, frame + 8, 8);
    if (magic != kMagic || length > kMaxPayload || length > size - at - kFrameBytes - 4) {
      torn = true;
      break;
    }
    RawRecord r{type, at + kFrameBytes, std::string(size_t(length), '\0')};
    uint32_t stored = 0;
    if (!readAt(f.fd, r.offset, r.payload.data(), size_t(length)) ||
        !readAt(f.fd, r.offset + length, &stored, 4)) {
      torn = true;
      break;
    }
    uint32_t crc = crc32(frame + 4, 12);
    crc = crc32(r.payload.data(), r.payload.size(), crc);
    if (crc != stored) {
      torn = true;
      break;
    }
    at = r.offset + length + 4;
    out.push_back(std::move(r));
  }
  if (torn && at + kFrameBytes + 4 < size) {
    // More than one record's frame follows: not just the record a kill cut short.
    spdlog::warn(
        "journal {}: damaged record at byte {} of {}; what follows it is ignored (those videos are "
        "redone)",
        path, at, size);
  }
  return out;
}

}  // namespace

JournalIndex scanJournals(const std::string& dir, const FileMetadata& meta) {
  JournalIndex index;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return index;
  struct File {
    std::string runId;
    int32_t rank;
    std::string path;
    std::vector<RawRecord> records;
  };
  std::vector<File> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".vfj") continue;
    bool torn = false;
    File file{"", 0, e.path().string(), readRecords(e.path().string(), torn)};
    if (torn) ++index.tornRecords;
    if (file.records.empty() || file.records[0].type != kHeader)
      continue;  // its header never reached the disk
    In in{file.records[0].payload.data(),
          file.records[0].payload.data() + file.records[0].payload.size()};
    try {
      const uint32_t version = in.pod<uint32_t>();
      if (version != kFormat) {
        throw Error("journal " + file.path + " has format " + std::to_string(version) +
                    ", this vidfeat reads " + std::to_string(kFormat));
      }
      file.runId = in.str();
      file.rank = in.pod<int32_t>();
      FileMetadata theirs = getMeta(in);
      auto diffs = metadataDifferences(theirs, meta);
      if (!diffs.empty()) {
        std::string msg =
            "journal " + file.path +
            " was written with different settings than this run's, so its results cannot go into "
            "this output (pass --overwrite to start afresh):";
        for (const auto& d : diffs) msg += "\n  " + d;
        throw Error(msg);
      }
    } catch (const Error&) {
      throw;
    }
    files.push_back(std::move(file));
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
    return std::tie(a.runId, a.rank, a.path) < std::tie(b.runId, b.rank, b.path);
  });
  std::map<std::string, int> crashes;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    const File& file = files[fi];
    index.files.push_back(file.path);
    std::set<std::string> open;
    bool closed = false;
    for (size_t k = 1; k < file.records.size(); ++k) {
      const RawRecord& r = file.records[k];
      ++index.records;
      In in{r.payload.data(), r.payload.data() + r.payload.size()};
      switch (r.type) {
        case kBase:
          index.covers = true;
          break;
        case kClose:
          closed = true;
          break;
        case kAttempt:
          open.insert(in.str());
          break;
        case kResult: {
          JournaledResult j = getResult(in);
          open.erase(j.videoId);
          JournalIndex::Entry entry{j.videoId,
                                    j.path,
                                    j.result.status,
                                    int64_t(j.result.segments.size()),
                                    j.result.decodedFrames,
                                    fi,
                                    r.offset,
                                    r.payload.size()};
          auto it = index.results.find(j.videoId);
          // Complete wins over failed; otherwise the latest (files are in run order).
          if (it == index.results.end() || !(it->second.status == VideoStatus::Complete &&
                                             entry.status != VideoStatus::Complete)) {
            index.results[j.videoId] = entry;
          }
          break;
        }
        default:
          break;  // a record type of a later format: skipped
      }
    }
    if (!closed) {
      for (const auto& id : open) ++crashes[id];
    }
  }
  for (const auto& [id, n] : crashes) {
    if (!index.results.count(id)) index.crashes[id] = n;
  }
  return index;
}

JournaledResult loadResult(const JournalIndex& index, const JournalIndex::Entry& entry) {
  const std::string& path = index.files.at(entry.file);
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) throw Error("cannot read journal " + path + ": " + std::strerror(errno));
  std::string payload(size_t(entry.length), '\0');
  char frame[kFrameBytes];
  uint32_t stored = 0;
  if (!readAt(f.fd, entry.offset - kFrameBytes, frame, kFrameBytes) ||
      !readAt(f.fd, entry.offset, payload.data(), payload.size()) ||
      !readAt(f.fd, entry.offset + entry.length, &stored, 4) ||
      crc32(payload.data(), payload.size(), crc32(frame + 4, 12)) != stored) {
    throw Error("journal " + path + ": the record of video '" + entry.videoId +
                "' changed since it was read");
  }
  In in{payload.data(), payload.data() + payload.size()};
  return getResult(in);
}

void removeJournals(const std::string& dir, const std::string& suffix) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  const std::string done = dir + ".done-" + suffix;
  if (::rename(dir.c_str(), done.c_str()) < 0) throw Error(ioErrorMessage(dir, errno, "rename"));
  fs::remove_all(done, ec);
  if (ec) spdlog::warn("could not remove {}: {} (it is garbage: remove it)", done, ec.message());
}

void removeFinishedJournals(const std::string& dir) {
  const fs::path p(dir);
  std::error_code ec;
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".done-";
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(e.path(), ec);
  }
}

}  // namespace vidfeat
