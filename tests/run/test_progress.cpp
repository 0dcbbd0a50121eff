// The progress texts (run/progress.h) and the console mode (common/log.h), over many terminal
// widths and counts; tests/cli/test_terminal.py checks the bytes a real run writes on a
// pseudo-terminal and into a pipe.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>

#include "vidfeat/common/log.h"
#include "vidfeat/run/progress.h"

namespace {

using vidfeat::ProgressReporter;

TEST(Progress, StatusLineFitsTheTerminalWithWholeFields) {
  // After "D/T videos" and the bar: whole fields only ("ETA x", "F failed", "R clips/s",
  // "elapsed x").
  const std::regex line(R"((\d+)/(\d+) videos( \[[=> ]+\] +\d+%)?)"
                        R"((( |, )(ETA \S+|\d+ failed|[\d.]+ clips/s|elapsed \S+))*)");
  for (int columns = 10; columns <= 240; ++columns) {
    for (int64_t total : {1, 40, 10000, 123456789}) {
      for (int64_t done : {int64_t(0), total / 3, total}) {
        const std::string head = std::to_string(done) + "/" + std::to_string(total) + " videos";
        const std::string s =
            ProgressReporter::statusLine(done, total, done / 7, 12345.678, 3725.0, columns);
        EXPECT_TRUE(std::regex_match(s, line)) << columns << ": " << s;
        EXPECT_EQ(s.rfind(head, 0), 0u) << s;
        // One column stays free so the terminal never wraps it; the count is never cut.
        EXPECT_LE(s.size(), std::max(size_t(columns - 1), head.size())) << columns << ": " << s;
      }
    }
  }
}

TEST(Progress, StatusLineBarAndEta) {
  // 100 columns: a bar of min(30, 100 / 4) = 25 cells; 10 of 40 done -> 6 '=' (floor(25 / 4)).
  const std::string quarter = ProgressReporter::statusLine(10, 40, 2, 3.5, 30.0, 100);
  EXPECT_EQ(quarter,
            "10/40 videos [======>                  ]  25% ETA 1m30s, 2 failed, 3.50 clips/s, "
            "elapsed 30s");
  // Done: the bar full, ETA 0s. Nothing done yet: ETA unknown.
  EXPECT_NE(ProgressReporter::statusLine(40, 40, 0, 1, 7200, 160)
                .find("[" + std::string(30, '=') + "] 100% ETA 0s"),
            std::string::npos);
  EXPECT_NE(ProgressReporter::statusLine(0, 40, 0, 0, 2, 100).find("ETA ?"), std::string::npos);
  // Under 40 columns no bar, the fields that fit: "3/40 videos, ETA 1h02m" is 22 characters.
  EXPECT_EQ(ProgressReporter::statusLine(3, 40, 0, 1, 3725.0 * 3 / 37, 30),
            "3/40 videos, ETA 1h02m");
}

TEST(Progress, PlainLine) {
  // 4 of 40 in 1 s: 36 more at 4 per second -> ETA 9 s.
  EXPECT_EQ(ProgressReporter::plainLine(4, 40, 1, 3.871, 1.0),
            "progress: 4/40 videos (1 failed), 3.87 clips/s, elapsed 1s, ETA 9s");
  EXPECT_EQ(ProgressReporter::plainLine(40, 40, 0, 2, 125.0),
            "progress: 40/40 videos (0 failed), 2.00 clips/s, elapsed 2m05s, ETA 0s");
}

TEST(ConsoleMode, LiveLineOnlyForOneProcessOnACapableTerminal) {
  using vidfeat::consoleModeFor;
  auto m = consoleModeFor(true, nullptr, "xterm-256color", 0, 1);
  EXPECT_TRUE(m.live);
  EXPECT_TRUE(m.color);
  m = consoleModeFor(true, "1", "xterm", 0, 1);  // NO_COLOR: no colours, the live line stays
  EXPECT_TRUE(m.live);
  EXPECT_FALSE(m.color);
  EXPECT_TRUE(
      consoleModeFor(true, "", "xterm", 0, 1).color);  // an empty NO_COLOR is unset (no-color.org)
  m = consoleModeFor(true, nullptr, "dumb", 0, 1);
  EXPECT_FALSE(m.live);
  EXPECT_FALSE(m.color);
  m = consoleModeFor(true, nullptr, nullptr, 0, 1);  // no TERM: VT100's sequences are assumed
  EXPECT_TRUE(m.live);
  m = consoleModeFor(true, nullptr, "xterm", 1, 2);  // several ranks: plain lines (with colours)
  EXPECT_FALSE(m.live);
  EXPECT_TRUE(m.color);
  EXPECT_EQ(m.rank, 1);
  m = consoleModeFor(false, nullptr, "xterm", 0, 1);  // a pipe, a file
  EXPECT_FALSE(m.live);
  EXPECT_FALSE(m.color);
}

}  // namespace
