#include "vidfeat/run/manifest.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "vidfeat/common/error.h"

namespace vidfeat {

namespace fs = std::filesystem;

namespace {

// Splits one CSV record (RFC 4180). Returns false for an unterminated quote.
bool splitCsv(const std::string& line, std::vector<std::string>& fields) {
  fields.clear();
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  fields.push_back(cur);
  return !quoted;
}

std::string trimEol(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.pop_back();
  return s;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::string defaultVideoId(const std::string& manifestDir, const std::string& pathAsWritten) {
  fs::path p(pathAsWritten);
  fs::path rel = p.is_absolute() ? p.lexically_relative(manifestDir) : p.lexically_normal();
  if (rel.empty() || *rel.begin() == "..") rel = p.lexically_normal();  // outside the folder
  rel.replace_extension();
  std::string id = rel.generic_string();
  while (!id.empty() && id.front() == '/') id.erase(id.begin());
  return id;
}

std::string ManifestProblem::describe() const {
  return "line " + std::to_string(line) + ": " + (path.empty() ? videoId : path) + ": " + reason;
}

Manifest parseManifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open manifest");
  const std::string dir = fs::absolute(fs::path(path)).parent_path().lexically_normal().string();
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(trimEol(line));
  // A UTF-8 byte order mark (spreadsheets write one) is not part of the first column's name:
  // kept, it would hide a `video_id` or `path` header and turn the CSV into a list of paths.
  if (!lines.empty() && lines[0].compare(0, 3, "\xEF\xBB\xBF") == 0) lines[0].erase(0, 3);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find('\0') != std::string::npos) {
      throw InputError(path, "line " + std::to_string(i + 1) + " contains a NUL byte");
    }
  }

  // A CSV has a header line naming a `path` column.
  size_t first = 0;
  while (first < lines.size() && trim(lines[first]).empty()) ++first;
  std::vector<std::string> header;
  int pathCol = -1, idCol = -1;
  if (first < lines.size() && splitCsv(lines[first], header)) {
    for (size_t c = 0; c < header.size(); ++c) {
      std::string h = trim(header[c]);
      if (h == "path") pathCol = int(c);
      if (h == "video_id") idCol = int(c);
    }
  }
  const bool csv = pathCol >= 0;

  Manifest m;
  m.path = path;
  std::set<std::string> ids;
  std::vector<std::string> fields;
  std::vector<std::string> tooLong;
  for (size_t i = csv ? first + 1 : 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (trim(line).empty() || (!csv && line[0] == '#')) continue;
    const std::string where = "line " + std::to_string(i + 1);
    std::string written, id;
    if (csv) {
      if (!splitCsv(line, fields)) throw InputError(path, where + ": unterminated quote");
      if (int(fields.size()) <= pathCol) {
        m.problems.push_back({i + 1, "", "", "no path column"});
        continue;
      }
      written = fields[size_t(pathCol)];
      if (idCol >= 0 && int(fields.size()) > idCol) id = fields[size_t(idCol)];
    } else {
      written = line;  // a plain list keeps spaces: file names may have them
    }
    if (written.empty()) {
      m.problems.push_back({i + 1, id, "", "empty path"});
      continue;
    }
    fs::path p(written);
    std::string resolved = (p.is_absolute() ? p : fs::path(dir) / p).lexically_normal().string();
    if (id.empty()) id = defaultVideoId(dir, written);
    if (id.empty()) {
      m.problems.push_back({i + 1, "", resolved, "cannot derive a video id"});
      continue;
    }
    // Longer than the output's fixed-length fields: not a problem --skip-invalid could record
    // (the row itself cannot be stored), so the manifest is refused before any output exists.
    if (id.size() > kMaxVideoIdBytes || resolved.size() > kMaxPathBytes) {
      tooLong.push_back(
          where + ": " +
          (id.size() > kMaxVideoIdBytes ? "video id of " + std::to_string(id.size()) + " bytes"
                                        : "path of " + std::to_string(resolved.size()) + " bytes") +
          " ('" + (id.size() > kMaxVideoIdBytes ? id : resolved).substr(0, 40) + "...')");
      continue;
    }
    if (!ids.insert(id).second) {
      m.problems.push_back({i + 1, id, resolved, "duplicate video id '" + id + "'"});
      continue;
    }
    m.entries.push_back({id, resolved});
    m.lines.push_back(i + 1);
  }
  if (!tooLong.empty()) {
    std::string report =
        std::to_string(tooLong.size()) +
        " line(s) too long for the output file, which stores video ids of at most " +
        std::to_string(kMaxVideoIdBytes) + " bytes and paths of at most " +
        std::to_string(kMaxPathBytes) + " (docs/FORMAT.md):";
    for (size_t k = 0; k < tooLong.size() && k < 20; ++k) report += "\n  " + tooLong[k];
    if (tooLong.size() > 20)
      report += "\n  ... and " + std::to_string(tooLong.size() - 20) + " more";
    throw InputError(path, report);
  }
  if (m.entries.empty() && m.problems.empty())
    throw InputError(path, "the manifest lists no videos");
  return m;
}

void checkManifestFiles(Manifest& m) {
  std::vector<VideoEntry> ok;
  std::vector<size_t> okLines;
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const auto& e = m.entries[i];
    std::error_code ec;
    auto st = fs::status(e.path, ec);
    std::string reason;
    if (ec || !fs::exists(st)) {
      reason = "file does not exist";
    } else if (fs::is_directory(st)) {
      reason = "is a directory, not a video file";
    } else if (!fs::is_regular_file(st)) {
      reason = "is not a regular file (a pipe or device could block the job)";
    } else if (!std::ifstream(e.path, std::ios::binary)) {
      reason = "cannot be read (permissions?)";
    }
    if (reason.empty()) {
      ok.push_back(e);
      okLines.push_back(m.lines[i]);
    } else {
      m.problems.push_back({m.lines[i], e.videoId, e.path, reason});
      m.invalid.push_back(e);
    }
  }
  m.entries = std::move(ok);
  m.lines = std::move(okLines);
}

std::vector<VideoEntry> readManifest(const std::string& path) {
  Manifest m = parseManifest(path);
  if (!m.problems.empty()) {
    std::string report = std::to_string(m.problems.size()) + " problem(s):";
    for (const auto& p : m.problems) report += "\n  " + p.describe();
    throw InputError(path, report);
  }
  return m.entries;
}

}  // namespace vidfeat
