#include "vidfeat/run/output_lock.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/mpi/mpi_session.h"

namespace vidfeat {

namespace {

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

std::string utcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string slurmJob() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job || !*job) return "";
  std::string s = job;
  const char* array = std::getenv("SLURM_ARRAY_JOB_ID");
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  if (array && task && *array && *task) s = std::string(array) + "_" + task + " (job " + job + ")";
  return s;
}

// What a lock file says about its holder.
struct Holder {
  std::map<std::string, std::string> fields;
  double ageSeconds = 0.0;  // since the last heartbeat (mtime)
  bool parsed = false;
  std::string get(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() ? "" : it->second;
  }
  std::string describe() const {
    if (!parsed)
      return fmt::format("an unreadable lock file (last written {:.0f} s ago)", ageSeconds);
    std::string job = get("slurm_job");
    return fmt::format("host {}, pid {}{}, started {}, last heartbeat {:.0f} s ago", get("host"),
                       get("pid"), job.empty() || job == "none" ? "" : ", SLURM job " + job,
                       get("started"), ageSeconds);
  }
};

// Reads the lock; nullopt when it does not exist (any more). Opening it first gives NFS's
// close-to-open consistency a fresh mtime.
std::optional<Holder> readHolder(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(fmt::format("cannot read the output lock {}: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  ::fstat(fd, &st);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, size_t(n));
  ::close(fd);
  Holder h;
  const double mtime = double(st.st_mtim.tv_sec) + 1e-9 * double(st.st_mtim.tv_nsec);
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  h.ageSeconds = std::max(0.0, double(now.tv_sec) + 1e-9 * double(now.tv_nsec) - mtime);
  std::istringstream in(text);
  std::string line;
  bool header = false;
  while (std::getline(in, line)) {
    if (line == "vidfeat output lock") header = true;
    auto eq = line.find('=');
    if (eq != std::string::npos) h.fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  h.parsed = header && !h.get("token").empty() && !h.get("host").empty() && !h.get("pid").empty();
  return h;
}

bool pidAlive(const std::string& pidText) {
  char* end = nullptr;
  long pid = std::strtol(pidText.c_str(), &end, 10);
  if (pid <= 0 || !end || *end) return true;  // not a pid we understand: assume alive
  if (::kill(pid_t(pid), 0) != 0 && errno != EPERM) return false;
  // A zombie (exited, not yet reaped: its launcher died and PID 1 does not reap, as in some
  // containers) still answers kill(0) but holds nothing: its state in /proc/PID/stat is Z or X.
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return true;
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const char* close = std::strrchr(buf, ')');  // "PID (comm) S ...": comm may hold spaces
  if (n == 0 || !close || close[1] != ' ') return true;
  return close[2] != 'Z' && close[2] != 'X';
}

// Why the holder is dead, or "" when it is live.
std::string staleReason(const Holder& h, const std::string& myHost) {
  if (h.ageSeconds > OutputLock::kStaleSeconds) {
    return fmt::format("no heartbeat for {:.0f} s (> {:.0f} s)", h.ageSeconds,
                       OutputLock::kStaleSeconds);
  }
  if (h.parsed && h.get("host") == myHost && !pidAlive(h.get("pid"))) {
    return fmt::format("its process {} on this host ({}) is gone", h.get("pid"), myHost);
  }
  return "";
}

void writeAll(int fd, const std::string& text, const std::string& path) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(fmt::format("cannot write the output lock {}: {}", path, std::strerror(errno)));
    off += size_t(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL) {
    throw Error(fmt::format("cannot write the output lock {}: {}", path, std::strerror(errno)));
  }
}

// Creates `path` exclusively with `text`; false when it exists.
bool createExclusive(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw Error(fmt::format("cannot create the output lock {}: {}", path, std::strerror(errno)));
  }
  try {
    writeAll(fd, text, path);
  } catch (...) {
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  ::close(fd);
  return true;
}

}  // namespace

struct OutputLock::Impl {
  std::string output, path, token, text;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread heartbeat;

  bool ours() const {
    auto h = readHolder(path);
    return h && h->get("token") == token;
  }

  void beat() {
    std::unique_lock<std::mutex> lock(mutex);
    const auto period = std::chrono::duration<double>(kHeartbeatSeconds);
    while (!wake.wait_for(lock, period, [&] { return stopping; })) {
      std::optional<Holder> h;
      try {
        h = readHolder(path);
      } catch (const std::exception& e) {
        spdlog::warn("output lock heartbeat: {}", e.what());
        continue;  // a transient file system error: try again at the next beat
      }
      if (!h || h->get("token") != token) {
        abortJob(
            fmt::format("the output lock {} {}: another job may be writing {}; stopping so that "
                        "two jobs never "
                        "write one file (rerun to resume once it is done)",
                        path, h ? "was taken over by " + h->describe() : "was removed", output),
            1);
      }
      if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) {
        spdlog::warn("output lock heartbeat: cannot touch {}: {}", path, std::strerror(errno));
      }
    }
  }
};

OutputLock::OutputLock(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->heartbeat = std::thread([p = impl_.get()] { p->beat(); });
}

OutputLock::~OutputLock() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  try {
    if (impl_->ours()) ::unlink(impl_->path.c_str());
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

const std::string& OutputLock::path() const { return impl_->path; }

std::unique_ptr<OutputLock> OutputLock::acquire(const std::string& outputPath) {
  auto impl = std::make_unique<Impl>();
  impl->output = outputPath;
  impl->path = outputPath + ".lock";
  std::random_device rd;
  impl->token = fmt::format("{:08x}{:08x}{:08x}", rd(), rd(), uint32_t(::getpid()));
  const std::string host = hostName();
  const std::string job = slurmJob();
  impl->text = fmt::format(
      "vidfeat output lock\noutput={}\nhost={}\npid={}\nslurm_job={}\nstarted={}\ntoken={}\n",
      std::filesystem::absolute(outputPath).string(), host, ::getpid(), job.empty() ? "none" : job,
      utcNow(), impl->token);
  const std::string& path = impl->path;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (createExclusive(path, impl->text)) {
      if (impl->ours()) return std::unique_ptr<OutputLock>(new OutputLock(std::move(impl)));
      continue;  // replaced at once by a takeover that judged a lock stale: look again
    }
    std::optional<Holder> holder = readHolder(path);
    if (!holder) continue;  // removed meanwhile: try to create it again
    const std::string reason = staleReason(*holder, host);
    if (reason.empty()) {
      throw Error(
          fmt::format("{} is in use by another vidfeat job: {} (lock file {}). Wait for it to end; "
                      "if that job is "
                      "gone (e.g. its node crashed), remove the lock file, or rerun once its "
                      "heartbeat is older than "
                      "{:.0f} s. --overwrite does not bypass a live lock.",
                      outputPath, holder->describe(), path, kStaleSeconds));
    }
    // Stale: take it over under a short-lived takeover file, so two jobs cannot both replace it.
    const std::string takeover = path + ".takeover";
    if (!createExclusive(takeover, impl->text)) {
      auto t = readHolder(takeover);
      if (t && t->ageSeconds > 30.0) {
        ::unlink(takeover.c_str());  // left by a job that died while taking over
        continue;
      }
      throw Error(fmt::format(
          "{}: another job is taking over the stale lock {} right now ({}); retry in a moment",
          outputPath, path, t ? t->describe() : "gone since"));
    }
    std::optional<Holder> again = readHolder(path);
    if (again && again->get("token") == holder->get("token") &&
        !staleReason(*again, host).empty()) {
      const std::string fresh = fmt::format("{}.{}.{}.new", path, host, ::getpid());
      ::unlink(fresh.c_str());
      bool written = false;
      try {
        written = createExclusive(fresh, impl->text);
      } catch (...) {
        ::unlink(takeover.c_str());
        throw;
      }
      if (!written || ::rename(fresh.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(fresh.c_str());
        ::unlink(takeover.c_str());
        throw Error(
            fmt::format("cannot take over the stale output lock {}: {}", path, std::strerror(err)));
      }
    }
    ::unlink(takeover.c_str());
    if (impl->ours()) {
      spdlog::warn("{}: took over a stale lock ({}): {}", path, reason, holder->describe());
      return std::unique_ptr<OutputLock>(new OutputLock(std::move(impl)));
    }
  }
  throw Error(fmt::format(
      "cannot take the output lock {}: it keeps changing (several jobs starting on {} at once?)",
      path, outputPath));
}

std::unique_ptr<OutputLock> lockOutput(const std::string& outputPath, MPI_Comm comm) {
  std::unique_ptr<OutputLock> lock;
  std::string error;
  if (commRank(comm) == 0) {
    try {
      lock = OutputLock::acquire(outputPath);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  broadcastString(error, 0, comm);
  if (!error.empty()) throw CollectiveError(error);
  return lock;
}

}  // namespace vidfeat
