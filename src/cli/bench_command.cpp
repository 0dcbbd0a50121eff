// vidfeat bench decode: the decode side of a rank alone (decode -> clips -> crops, normalised),
// no model, in frames/s per video; tools/bench/decode.py sets it beside the FFmpeg CLI.
#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "clip_options.h"
#include "options.h"
#include "vidfeat/cli/commands.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/decode/video_decoder.h"
#include "vidfeat/pipeline/decode_rate.h"
#include "vidfeat/run/extraction.h"
#include "vidfeat/zoo/model_zoo.h"

namespace vidfeat::cli {

namespace {

std::string jsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

struct Measured {
  std::string path;
  DecodeRate rate;  // the run of median time among --repeat runs
};

}  // namespace

int benchCommand(const std::vector<std::string>& argv) {
  std::vector<std::string> args = argv;
  // `vidfeat bench decode ...`: decode is the one benchmark (`vidfeat bench --help` shows it).
  if (!args.empty() && args[0] == "decode") args.erase(args.begin());
  std::string model, config, json, decodeDevice = "cpu";
  std::vector<std::string> sets, videos;
  int threads = 0, repeat = 1;
  double videoTimeout = 0.0;
  ClipArgs clip;
  CommandOptions opts(
      "bench",
      "vidfeat bench decode VIDEO... --config CFG: decodes each video, cuts it into the config's\n"
      "clips and preprocesses them as `extract` does on the CPU, with no model; prints frames/s\n"
      "per video (decoded frames over wall time) and how many frames were converted to RGB.");
  opts.add()("video", po::value(&videos)->composing()->required(), "video files (positional)")(
      "model", po::value(&model), "a published model by name (`vidfeat models`): its config")(
      "config", po::value(&config), "PySlowFast YAML config (default with --model: its own)")(
      "set", po::value(&sets)->composing(), "override a config value: --set KEY=VALUE")(
      "threads", po::value(&threads)->default_value(0),
      "FFmpeg codec threads (0 = FFmpeg's choice, as extract)")(
      "decode-device", po::value(&decodeDevice)->default_value("cpu"), "cpu, cuda or cuda:N")(
      "repeat", po::value(&repeat)->default_value(1),
      "decode each video this many times; the run of median time is reported")(
      "video-timeout", po::value(&videoTimeout)->default_value(0.0),
      "fail a video still decoding after this many seconds (0 = no limit)")(
      "json", po::value(&json), "also write the results to this JSON file");
  declareClipOptions(opts, clip);
  opts.positional("video", -1);
  if (!opts.parse(args)) return 0;
  if (!model.empty() && config.empty()) config = findZooModel(model).config;
  if (config.empty()) throw Error("vidfeat bench: give --config FILE or --model NAME");
  if (repeat < 1) throw Error("vidfeat bench: --repeat must be >= 1");
  checkDecodeDevice(decodeDevice);
  const Config cfg = Config::load(config, sets);
  ExtractOptions eo = clipOptions(clip, cfg);
  eo.decodeThreads = threads;
  eo.decodeDevice = decodeDevice;
  eo.timeoutSeconds = videoTimeout;
  eo.validate();

  std::vector<Measured> results;
  for (const auto& path : videos) {
    std::vector<DecodeRate> runs;
    for (int i = 0; i < repeat; ++i) {
      runs.push_back(measureDecodeRate(eo, {path, path}));
      if (runs.back().status != VideoStatus::Complete) break;
    }
    if (runs.back().status != VideoStatus::Complete) {  // the failed run is reported, not a median
      results.push_back({path, runs.back()});
      continue;
    }
    std::sort(runs.begin(), runs.end(),
              [](const DecodeRate& a, const DecodeRate& b) { return a.seconds < b.seconds; });
    results.push_back({path, runs[runs.size() / 2]});
  }

  const BucketSpec& b = eo.buckets;
  fmt::print("{} frames every {}, crop {} (short side {}), {} crop(s), codec threads {}, {}\n",
             b.numFrames,
             b.byTime() ? fmt::format("{:g} s", b.clipSeconds)
                        : fmt::format("{} frame(s)", b.samplingRate),
             eo.preprocess.cropSize, eo.preprocess.shortSide, eo.crops,
             threads > 0 ? std::to_string(threads) : "auto", decodeDevice);
  fmt::print("{:>8} {:>9} {:>6} {:>9} {:>10}  {}\n", "frames", "converted", "clips", "seconds",
             "frames/s", "video");
  int failed = 0;
  std::ostringstream js;
  js << "{\"num_frames\": " << b.numFrames << ", \"sampling_rate\": " << b.samplingRate
     << ", \"crop\": " << eo.preprocess.cropSize << ", \"crops\": " << eo.crops
     << ", \"codec_threads\": " << threads << ", \"decode_device\": " << jsonString(decodeDevice)
     << ", \"videos\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& [path, r] = results[i];
    const bool ok = r.status == VideoStatus::Complete;
    if (ok) {
      fmt::print("{:>8} {:>9} {:>6} {:>9.3f} {:>10.1f}  {}\n", r.decodedFrames, r.framesConverted,
                 r.clips, r.seconds, r.framesPerSecond(), path);
    } else {
      ++failed;
      fmt::print("{:>8} {:>9} {:>6} {:>9} {:>10}  {}: FAILED: {}\n", "-", "-", "-", "-", "-", path,
                 r.error);
    }
    js << (i ? ", " : "") << "{\"path\": " << jsonString(path)
       << ", \"ok\": " << (ok ? "true" : "false") << ", \"error\": " << jsonString(r.error)
       << ", \"decoded_frames\": " << r.decodedFrames
       << ", \"frames_converted\": " << r.framesConverted << ", \"clips\": " << r.clips
       << ", \"seconds\": " << fmt::format("{:.6f}", r.seconds)
       << ", \"frames_per_second\": " << fmt::format("{:.3f}", r.framesPerSecond()) << "}";
  }
  js << "]}\n";
  if (!json.empty()) {
    std::ofstream out(json);
    out << js.str();
    if (!out.flush()) throw Error("vidfeat bench: cannot write " + json);
  }
  return failed > 0 ? kSomeVideosFailed : 0;
}

}  // namespace vidfeat::cli
