#include "vidfeat/common/log.h"

#include <spdlog/sinks/base_sink.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace vidfeat {

namespace {

constexpr std::string_view kClearLine = "\r\033[K";  // to column 0, erase to the end of the line

// Every line of the process goes through this one sink (and its one mutex) onto stderr: log lines
// and, on a terminal, the live status line, which each log line clears and draws again below it.
class ConsoleSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ConsoleSink(ConsoleMode mode) : mode_(mode) {}

  void setStatus(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = fitted(text);
    std::string out(kClearLine);
    out += status_;
    put(out);
    shown_ = true;
  }

  void endStatus() {
    std::lock_guard<std::mutex> lock(mutex_);
    leaveStatus();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    std::string out;
    if (shown_) out += kClearLine;
    const size_t from = msg.color_range_start, to = msg.color_range_end;
    if (mode_.color && from < to && to <= line.size()) {
      out.append(line.data(), from);
      out += levelColor(msg.level);
      out.append(line.data() + from, to - from);
      out += "\033[0m";
      out.append(line.data() + to, line.size() - to);
    } else {
      out.append(line.data(), line.size());
    }
    if (shown_) out += status_;
    put(out);
  }

  // Only abortJob flushes, just before the process ends: the status stays, with a line break, so
  // the shell's prompt does not land on it.
  void flush_() override {
    leaveStatus();
    std::fflush(stderr);
  }

 private:
  static std::string_view levelColor(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace:
        return "\033[37m";
      case spdlog::level::debug:
        return "\033[36m";
      case spdlog::level::info:
        return "\033[32m";
      case spdlog::level::warn:
        return "\033[33m\033[1m";
      default:
        return "\033[31m\033[1m";  // error, critical
    }
  }

  // The status stays on the screen, drawn once more (stop_signal's handler may have erased it),
  // and the cursor moves below it.
  void leaveStatus() {
    if (shown_) {
      std::string out(kClearLine);
      out += status_;
      out += '\n';
      put(out);
    }
    shown_ = false;
    status_.clear();
  }

  // One line that fits: no line break, and one column short of the width, so that the terminal
  // never wraps it (a wrapped status line could not be cleared by going back to column 0).
  static std::string fitted(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    const size_t width = size_t(std::max(1, terminalColumns() - 1));
    if (line.size() > width) line.resize(width);
    return line;
  }

  static void put(std::string_view bytes) {
    std::fwrite(bytes.data(), 1, bytes.size(), stderr);
    std::fflush(stderr);
  }

  const ConsoleMode mode_;
  std::string status_;
  bool shown_ = false;  // the status line is on the screen, the cursor at its end
};

std::shared_ptr<ConsoleSink> gSink;
std::atomic<Verbosity> gVerbosity{Verbosity::Normal};
std::atomic<bool> gLive{false};  // read by stop_signal's handler: lock-free

}  // namespace

ConsoleMode consoleModeFor(bool stderrIsTerminal, const char* noColor, const char* term, int rank,
                           int size) {
  // TERM=dumb (Emacs' shell, some CI consoles): a terminal that cannot erase a line. An unset TERM
  // is taken as capable: the two sequences used (erase line, SGR colours) are VT100's.
  const bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  ConsoleMode m;
  m.color = stderrIsTerminal && !dumb && (noColor == nullptr || noColor[0] == '\0');
  // Under mpirun/srun every rank's stderr is a pipe to the launcher, which interleaves the ranks'
  // lines on its own stderr: a live line could not stay at the bottom there, so only a single
  // process on a terminal draws one.
  m.live = stderrIsTerminal && !dumb && size == 1;
  m.rank = rank;
  return m;
}

void initLogging(int rank, int size, Verbosity verbosity) {
  const ConsoleMode mode = consoleModeFor(isatty(STDERR_FILENO) == 1, std::getenv("NO_COLOR"),
                                          std::getenv("TERM"), rank, size);
  gSink = std::make_shared<ConsoleSink>(mode);
  gLive = mode.live;
  gVerbosity = verbosity;
  auto logger = std::make_shared<spdlog::logger>("vidfeat", gSink);
  // Off a live terminal every line of every rank starts with its rank (grep '^\[rank 3\]').
  const std::string rankTag = mode.live ? "" : "[rank " + std::to_string(rank) + "] ";
  logger->set_pattern(rankTag + "[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  logger->set_level(verbosity == Verbosity::Quiet   ? spdlog::level::err
                    : verbosity == Verbosity::Debug ? spdlog::level::debug
                                                    : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

Verbosity verbosity() { return gVerbosity.load(std::memory_order_relaxed); }

bool liveStatusLine() { return gLive.load(std::memory_order_relaxed); }

int terminalColumns() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 80;
}

void setStatusLine(const std::string& text) {
  if (gLive && gSink) gSink->setStatus(text);
}

void endStatusLine() {
  if (gSink) gSink->endStatus();
}

}  // namespace vidfeat
