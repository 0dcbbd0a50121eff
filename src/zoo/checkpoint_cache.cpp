#include "vidfeat/zoo/checkpoint_cache.h"

#include "vidfeat/build_config.h"
#if VIDFEAT_DOWNLOADS
#include <curl/curl.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/model/checkpoint.h"

namespace vidfeat {

namespace fs = std::filesystem;

#if VIDFEAT_DOWNLOADS
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct FileDeleter {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

size_t writeToFile(char* data, size_t size, size_t count, void* file) {
  return std::fwrite(data, size, count, static_cast<std::FILE*>(file));
}

// One attempt: appends to `part` from its current size. Returns CURLE_OK when the server said the
// transfer is complete.
CURLcode fetchInto(const std::string& url, const std::string& part, long& httpStatus,
                   std::string& why) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    why = "curl_easy_init failed";
    return CURLE_FAILED_INIT;
  }
  std::error_code ec;
  const curl_off_t have = fs::exists(part, ec) ? curl_off_t(fs::file_size(part, ec)) : 0;
  std::unique_ptr<std::FILE, FileDeleter> out(std::fopen(part.c_str(), "ab"));
  if (!out) throw InputError(part, "cannot write the download");
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &writeToFile);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, out.get());
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stalled transfer...
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);  // ...is given up after a minute
  if (have > 0) curl_easy_setopt(curl.get(), CURLOPT_RESUME_FROM_LARGE, have);
  CURLcode rc = curl_easy_perform(curl.get());
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &httpStatus);
  if (rc != CURLE_OK) why = error[0] ? error : curl_easy_strerror(rc);
  if (rc == CURLE_OK && have > 0 && httpStatus == 200) {
    // The server ignored the range and sent the whole file after our partial one: start over.
    out.reset();
    fs::remove(part, ec);
    why = "server does not resume downloads; starting again";
    return CURLE_RANGE_ERROR;
  }
  return rc;
}

}  // namespace
#endif

CachedCheckpoint ensureCheckpoint(const ZooModel& model, const std::string& cacheDir) {
  CachedCheckpoint out;
  out.path = (fs::path(cacheDir) / model.fileName()).string();
  const std::string shaPath = out.path + ".sha256";
  std::error_code ec;
  // The pin: models.yaml's hash, else the one recorded at the first download.
  std::string pinned = model.sha256, pinSource = "pinned in models.yaml";
  if (pinned.empty()) {
    std::ifstream in(shaPath);
    if (in >> pinned && pinned.size() == 64) {
      pinSource = "recorded at its first download in " + shaPath;
    } else {
      pinned.clear();
    }
  }
  if (fs::exists(out.path, ec)) {
    out.sha256 = sha256File(out.path);  // every use: a cached file may have been replaced
    if (!pinned.empty() && out.sha256 != pinned) {
      throw InputError(out.path, "the cached checkpoint of " + model.name + " has sha256 " +
                                     out.sha256 + ", not " + pinned + " (" + pinSource +
                                     "); delete it (and " + shaPath +
                                     " if the published file really changed) to download it again");
    }
    if (pinned.empty()) std::ofstream(shaPath) << out.sha256 << "\n";
    return out;
  }
  const std::string advice =
      "download " + model.url + " and put it at " + out.path + " (or pass --checkpoint FILE)";
  if (const char* off = std::getenv("VIDFEAT_OFFLINE"); off && *off && std::string(off) != "0") {
    throw Error("checkpoint of " + model.name +
                " is not in the cache and VIDFEAT_OFFLINE is set: " + advice);
  }
#if !VIDFEAT_DOWNLOADS
  throw Error("checkpoint of " + model.name +
              " is not in the cache and this vidfeat was built without downloads "
              "(VIDFEAT_DOWNLOADS=OFF, as the relocatable bundle is): " +
              advice);
#else
  fs::create_directories(cacheDir, ec);
  if (ec) throw InputError(cacheDir, "cannot create the checkpoint cache: " + ec.message());

  static const bool curlReady = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!curlReady) throw Error("libcurl could not be initialised; " + advice);
  const std::string part = out.path + ".part";
  std::string why;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    long status = 0;
    spdlog::info("downloading {} -> {} (attempt {}{})", model.url, out.path, attempt,
                 fs::exists(part, ec)
                     ? ", resuming from " + std::to_string(fs::file_size(part, ec)) + " bytes"
                     : "");
    CURLcode rc = fetchInto(model.url, part, status, why);
    if (rc == CURLE_OK) {
      out.sha256 = sha256File(part);
      if (!pinned.empty() && out.sha256 != pinned) {
        fs::remove(part, ec);
        throw Error("the download of " + model.url + " has sha256 " + out.sha256 + ", not " +
                    pinned + " (" + pinSource + "); it was not kept: " + advice);
      }
      std::ofstream(shaPath) << out.sha256 << "\n";
      fs::rename(part, out.path);  // atomic: a reader never sees a half file under the real name
      out.downloaded = true;
      spdlog::info("{}: sha256 {}", out.path, out.sha256);
      return out;
    }
    spdlog::warn("download of {} interrupted: {}", model.url, why);
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT || status == 404) break;
  }
  throw Error(
      "cannot download the checkpoint of " + model.name + " (" + why + "): " + advice +
      (fs::exists(part, ec) ? "; the partial download " + part + " resumes next time" : ""));
#endif
}

}  // namespace vidfeat
