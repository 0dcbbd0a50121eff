// gpu_probe (tools/gpu, not a test): the measurements tools/gpu/check.py needs that no vidfeat
// command makes. One JSON object per line on stdout, flushed as each is measured, so a child
// killed by its timeout still leaves the lines it finished.
//
//   gpu_probe parity CONFIG [--set K=V ...] [--device cuda] [--batch 2] [--seed 0]
//       [--precisions fp32,bf16,fp16] [--threads N]
//     Seeded random weights (FeatureModel::randomizeWeights: every parameter and BatchNorm
//     statistic) and a seeded random uint8 clip batch; the CPU fp32 feature, then the device's
//     feature of the same weights and input per precision (fp32 with TF32 off), and
//     ||dev - cpu|| / ||cpu||. Lines: {"kind": "parity", "precision", "rel_err", "cpu_s", "dev_s"}.
//   gpu_probe throughput CONFIG [--set K=V ...] [--device cuda] [--batches 1,8,32] [--flatten]
//       [--precisions fp32,bf16,fp16] [--seconds 2] [--channels-last] [--threads N]
//     Clips/s of FeatureModel::extractBytes (the path `vidfeat extract` takes on a GPU: uint8
//     upload, normalisation on the device, pinned buffers, the model's stream) per precision and
//     batch, two warm-up batches then timed batches for --seconds (at least 3); peak GPU memory of
//     the timed batches (CUDA builds). --flatten: after the list, doubles the batch while clips/s
//     still grows by >= 5 % (up to 256; an out-of-memory batch ends it). --channels-last: the
//     same forward through the network with its 5-d weights and input in channels_last_3d,
//     against the same network contiguous, at the largest batch that ran.
//   gpu_probe model CONFIG [the options of both] [--skip-signatures S1,S2]
//     parity, then throughput unless the network's signature (the "cpu" line: arch, input shape
//     and state shapes outside head.*) is one of --skip-signatures (then a "same_network" line).
//   gpu_probe info
//     {"kind": "info", "cuda": whether LibTorch sees a CUDA device, "devices", "torch", ...}
//   gpu_probe decode VIDEO [--device cpu|cuda] [--sampling 1] [--decode-threads 0] [--size 256]
//       [--seconds 0]
//     vidfeat's VideoDecoder: every frame decoded, every --sampling-th converted (RGB, short
//     side --size, as clips use them); frames/s of the whole file (or of the first --seconds).
//
// Errors of one measurement (out of memory, no CUDA device) are lines with "error"; the other
// measurements go on. Exit code 0 unless the arguments or the config are unusable.
#include <ATen/Context.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "networks/video_net.h"
#include "vidfeat/build_config.h"
#include "vidfeat/clip/preprocess.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/decode/video_decoder.h"
#include "vidfeat/model/feature_model.h"

#if VIDFEAT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

using namespace vidfeat;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// One output line, built field by field.
class Line {
 public:
  explicit Line(const std::string& kind) { add("kind", kind); }
  Line& add(const std::string& k, const std::string& v) { return raw(k, jsonString(v)); }
  Line& add(const std::string& k, const char* v) { return raw(k, jsonString(v)); }
  Line& add(const std::string& k, double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", v);
    return raw(k, b);
  }
  Line& add(const std::string& k, int64_t v) { return raw(k, std::to_string(v)); }
  Line& add(const std::string& k, int v) { return raw(k, std::to_string(v)); }
  Line& add(const std::string& k, bool v) { return raw(k, v ? "true" : "false"); }
  Line& raw(const std::string& k, const std::string& v) {
    body_ += (body_.empty() ? "" : ", ") + jsonString(k) + ": " + v;
    return *this;
  }
  void print() {
    std::printf("{%s}\n", body_.c_str());
    std::fflush(stdout);
  }

 private:
  std::string body_;
};

// A short reason from an exception (c10::Error carries a backtrace after its first line).
std::string reason(const std::exception& e) {
  std::string s = e.what();
  const auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

struct Args {
  std::string command, target, device = "cuda";
  std::vector<std::string> sets, precisions{"fp32", "bf16", "fp16"};
  std::vector<int64_t> batches{1, 8, 32};
  int64_t batch = 2, seed = 0, size = 256;
  int threads = 0, sampling = 1, decodeThreads = 0;
  double seconds = 2.0;
  bool flatten = false, channelsLast = false;
  std::vector<std::string> skipSignatures;  // model: no throughput for these networks
};

Args parseArgs(int argc, char** argv) {
  if (argc < 3) {
    throw Error(
        "usage: gpu_probe parity|throughput CONFIG [options] | gpu_probe decode VIDEO [options] "
        "(see the header of tools/gpu/gpu_probe.cpp)");
  }
  Args a;
  a.command = argv[1];
  a.target = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("gpu_probe: " + k + " needs a value");
      return argv[++i];
    };
    if (k == "--set") {
      a.sets.push_back(value());
    } else if (k == "--device") {
      a.device = value();
    } else if (k == "--precisions") {
      a.precisions = split(value());
    } else if (k == "--batches") {
      a.batches.clear();
      for (const auto& b : split(value())) a.batches.push_back(std::stoll(b));
    } else if (k == "--batch") {
      a.batch = std::stoll(value());
    } else if (k == "--seed") {
      a.seed = std::stoll(value());
    } else if (k == "--threads") {
      a.threads = std::stoi(value());
    } else if (k == "--seconds") {
      a.seconds = std::stod(value());
    } else if (k == "--sampling") {
      a.sampling = std::max(1, std::stoi(value()));
    } else if (k == "--decode-threads") {
      a.decodeThreads = std::stoi(value());
    } else if (k == "--size") {
      a.size = std::stoll(value());
    } else if (k == "--skip-signatures") {
      a.skipSignatures = split(value());
    } else if (k == "--flatten") {
      a.flatten = true;
    } else if (k == "--channels-last") {
      a.channelsLast = true;
    } else {
      throw Error("gpu_probe: unknown option " + k);
    }
  }
  return a;
}

// Seeded uint8 clips, the same bytes on every machine.
std::vector<uint8_t> randomClips(int64_t numel, uint64_t seed) {
  std::vector<uint8_t> out(static_cast<size_t>(numel));
  std::mt19937_64 gen(seed);
  for (size_t i = 0; i < out.size(); i += 8) {
    const uint64_t r = gen();
    std::memcpy(out.data() + i, &r, std::min<size_t>(8, out.size() - i));
  }
  return out;
}

// Kinetics' mean / std as the shipped configs give them: what packClip would do.
ClipNormalisation normalisation(const Config& cfg) {
  return normalisationOf(PreprocessSpec::fromConfig(cfg));
}

bool isCuda(const std::string& device) { return device.rfind("cuda", 0) == 0; }

// The reason a device cannot be used, or "" when it can.
std::string deviceProblem(const std::string& device) {
  if (isCuda(device) && !cudaAvailable()) return "no CUDA device";
  return "";
}

void setTf32(bool on) {
  at::globalContext().setAllowTF32CuDNN(on);
  at::globalContext().setAllowTF32CuBLAS(on);
}

void resetPeakMemory(const std::string& device) {
#if VIDFEAT_WITH_CUDA
  if (isCuda(device)) {
    const auto idx = torch::Device(device).has_index() ? torch::Device(device).index() : 0;
    c10::cuda::CUDACachingAllocator::resetPeakStats(idx);
  }
#else
  (void)device;
#endif
}

// Peak bytes the caching allocator handed out since resetPeakMemory (-1: not measurable here).
double peakMemoryMiB(const std::string& device) {
#if VIDFEAT_WITH_CUDA
  if (isCuda(device)) {
    const auto idx = torch::Device(device).has_index() ? torch::Device(device).index() : 0;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(idx);
    return double(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);  // [0]: aggregate
  }
#else
  (void)device;
#endif
  return -1.0;
}

double relativeError(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(a[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

// One forward of `batch` clips through the model's pipeline path; returns seconds.
double forward(FeatureModel& m, const ClipNormalisation& norm, const std::vector<uint8_t>& clips,
               int64_t batch, std::vector<float>& features) {
  features.resize(size_t(batch * m.featureDim()));
  const auto t0 = Clock::now();
  if (m.uploadsBytes()) {
    m.extractBytes(clips.data(), batch, norm, features.data());
  } else {
    // The CPU path: packClip's floats (the same arithmetic extractBytes does on the device).
    std::vector<float> f(clips.size());
    const int64_t plane = m.inputShape().numel() / 3;
    for (size_t i = 0; i < clips.size(); ++i) {
      const size_t c = (i / size_t(plane)) % 3;
      f[i] = float(clips[i]) * norm.scale[c] + norm.shift[c];
    }
    m.extract(f.data(), batch, features.data());
  }
  return since(t0);
}

// The network without its classifier: arch, input shape and every state-dict shape outside
// head.*. Zoo entries that differ only in their dataset's class count share it (and their
// throughput).
std::string signature(const FeatureModel& m) {
  std::ostringstream o;
  const auto s = m.inputShape();
  o << m.arch() << ' ' << s.frames << 'x' << s.height << 'x' << s.width;
  for (const auto& [name, shape] : m.stateShapes()) {
    if (name.rfind("head.", 0) == 0) continue;
    o << ';' << name;
    for (auto d : shape) o << ',' << d;
  }
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : o.str()) h = (h ^ uint64_t(static_cast<unsigned char>(c))) * 1099511628211ull;
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return b;
}

int parity(const Args& a, const Config& cfg, std::string* sig = nullptr) {
  setComputeThreads(a.threads);
  std::vector<float> ref;
  const auto norm = normalisation(cfg);
  double cpuSeconds = 0;
  {
    auto cpu = FeatureModel::build(cfg, "cpu", Precision::Fp32);
    cpu->randomizeWeights(uint64_t(a.seed));
    const auto clips = randomClips(a.batch * cpu->inputShape().numel(), uint64_t(a.seed) + 1);
    cpuSeconds = forward(*cpu, norm, clips, a.batch, ref);
    const std::string sg = signature(*cpu);
    if (sig) *sig = sg;
    int64_t params = 0;
    for (const auto& [name, shape] : cpu->stateShapes()) {
      int64_t n = 1;
      for (auto d : shape) n *= d;
      params += n;
    }
    const auto in = cpu->inputShape();
    Line("cpu")
        .add("arch", cpu->arch())
        .add("feature_dim", cpu->featureDim())
        .add("batch", a.batch)
        .add("cpu_s", cpuSeconds)
        .add("signature", sg)
        .add("state_numel", params)
        .add("input", std::to_string(in.frames) + "x" + std::to_string(in.height) + "x" +
                          std::to_string(in.width))
        .print();
  }
  for (const auto& p : a.precisions) {
    Line line("parity");
    line.add("precision", p).add("device", a.device).add("batch", a.batch).add("cpu_s", cpuSeconds);
    const std::string problem = deviceProblem(a.device);
    if (!problem.empty()) {
      line.add("error", problem).print();
      continue;
    }
    try {
      setTf32(false);  // the fp32 row is held to 1e-4: IEEE fp32 convolutions and matmuls
      auto dev = FeatureModel::build(cfg, a.device, parsePrecision(p));
      dev->randomizeWeights(uint64_t(a.seed));
      const auto clips = randomClips(a.batch * dev->inputShape().numel(), uint64_t(a.seed) + 1);
      std::vector<float> out;
      forward(*dev, norm, clips, a.batch, out);  // warm-up (cuDNN's algorithm choice)
      const double s = forward(*dev, norm, clips, a.batch, out);
      line.add("rel_err", relativeError(out, ref)).add("dev_s", s).add("tf32", false);
    } catch (const std::exception& e) {
      line.add("error", reason(e));
    }
    line.print();
  }
  setTf32(true);
  return 0;
}

struct Timed {
  double clipsPerSecond = 0, memoryMiB = -1;
  int iterations = 0;
};

Timed timeBatches(FeatureModel& m, const ClipNormalisation& norm, int64_t batch, double seconds,
                  uint64_t seed) {
  const auto clips = randomClips(batch * m.inputShape().numel(), seed);
  std::vector<float> out;
  for (int w = 0; w < 2; ++w) forward(m, norm, clips, batch, out);  // allocations, cuDNN's choices
  resetPeakMemory(m.device());
  Timed t;
  const auto t0 = Clock::now();
  while (t.iterations < 3 || since(t0) < seconds) {
    forward(m, norm, clips, batch, out);
    ++t.iterations;
  }
  t.clipsPerSecond = double(batch) * t.iterations / since(t0);
  t.memoryMiB = peakMemoryMiB(m.device());
  return t;
}

// Clips/s of the bare network (no pinned staging) with its 5-d weights and input in
// channels_last_3d (or contiguous), same weights, same precision.
double bareClipsPerSecond(const Config& cfg, const std::string& device, Precision p, int64_t batch,
                          double seconds, bool channelsLast) {
  c10::InferenceMode guard;
  const torch::ScalarType type = p == Precision::Fp16   ? torch::kHalf
                                 : p == Precision::Bf16 ? torch::kBFloat16
                                                        : torch::kFloat32;
  auto net = model::buildVideoNet(cfg);
  net->eval();
  model::randomizeParameters(*net, 0);
  net->to(torch::Device(device), type);
  model::foldBatchNorms(*net);
  const auto format =
      channelsLast ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::Contiguous;
  if (channelsLast) {
    for (auto& param : net->parameters())
      if (param.dim() == 5) param.set_data(param.contiguous(format));
  }
  const int64_t frames = cfg.get<int>("DATA.NUM_FRAMES"),
                crop = cfg.get<int>("DATA.TEST_CROP_SIZE");
  auto clip =
      torch::randn({batch, 3, frames, crop, crop}, torch::TensorOptions().device(device)).to(type);
  auto pathways = model::packPathways(cfg, clip);
  for (auto& t : pathways) t = t.contiguous(format);
  net->forwardFeatures(pathways, false).features.to(torch::kCPU);  // warm-up
  int it = 0;
  const auto t0 = Clock::now();
  while (it < 3 || since(t0) < seconds) {
    net->forwardFeatures(pathways, false).features.to(torch::kCPU);  // waits for the device
    ++it;
  }
  return double(batch) * it / since(t0);
}

int throughput(const Args& a, const Config& cfg) {
  setComputeThreads(a.threads);
  const auto norm = normalisation(cfg);
  const std::string problem = deviceProblem(a.device);
  for (const auto& p : a.precisions) {
    int64_t largest = 0;
    std::unique_ptr<FeatureModel> m;
    try {
      if (problem.empty()) {
        m = FeatureModel::build(cfg, a.device, parsePrecision(p));
        m->randomizeWeights(uint64_t(a.seed));
      }
    } catch (const std::exception& e) {
      Line("throughput").add("precision", p).add("error", reason(e)).print();
      continue;
    }
    std::vector<int64_t> batches = a.batches;
    double previous = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      const int64_t b = batches[i];
      Line line("throughput");
      line.add("precision", p).add("device", a.device).add("batch", b);
      if (!m) {
        line.add("error", problem).print();
        continue;
      }
      try {
        const Timed t = timeBatches(*m, norm, b, a.seconds, uint64_t(a.seed) + 1);
        line.add("clips_per_s", t.clipsPerSecond).add("iterations", t.iterations);
        if (t.memoryMiB >= 0) line.add("gpu_mem_mib", t.memoryMiB);
        largest = b;
        const bool last = i + 1 == batches.size();
        if (last && a.flatten && b < 256) {
          if (previous > 0 && t.clipsPerSecond < 1.05 * previous) {
            line.add("flat", true);  // no longer grows: this is where it flattens
          } else {
            batches.push_back(b * 2);
          }
        }
        previous = t.clipsPerSecond;
      } catch (const std::exception& e) {
        line.add("error", reason(e));
        line.print();
        break;  // a larger batch fails alike (out of memory)
      }
      line.print();
    }
    if (a.channelsLast && m && largest > 0) {
      Line line("channels_last");
      line.add("precision", p).add("batch", std::min<int64_t>(largest, 32));
      try {
        const int64_t b = std::min<int64_t>(largest, 32);
        const double dense =
            bareClipsPerSecond(cfg, a.device, parsePrecision(p), b, a.seconds, false);
        const double cl = bareClipsPerSecond(cfg, a.device, parsePrecision(p), b, a.seconds, true);
        line.add("contiguous_clips_per_s", dense)
            .add("channels_last_clips_per_s", cl)
            .add("gain", cl / dense);
      } catch (const std::exception& e) {
        line.add("error", reason(e));
      }
      line.print();
    }
  }
  return 0;
}

int decode(const Args& a) {
  Line line("decode");
  line.add("video", a.target).add("device", a.device).add("sampling", a.sampling);
  try {
    DecodeOptions o;
    o.device = a.device;
    o.threads = a.decodeThreads;
    VideoDecoder d(a.target, o);
    const auto& info = d.info();
    const int w = info.displayWidth, h = info.displayHeight;
    const int64_t shortSide = std::min(w, h);
    d.setOutputSize(int(std::max<int64_t>(2, w * a.size / shortSide)),
                    int(std::max<int64_t>(2, h * a.size / shortSide)));
    std::vector<uint8_t> rgb(size_t(d.outputWidth()) * size_t(d.outputHeight()) * 3);
    DecodedFrame f;
    const auto t0 = Clock::now();
    int64_t n = 0;
    while (d.next(f)) {
      if (n % a.sampling == 0) d.convert(rgb.data());
      ++n;
      if (a.seconds > 0 && since(t0) > a.seconds) break;
    }
    const double s = since(t0);
    line.add("codec", info.codec)
        .add("width", w)
        .add("height", h)
        .add("frames", n)
        .add("seconds", s)
        .add("frames_per_s", s > 0 ? double(n) / s : 0.0)
        .add("frames_on_device", d.stats().framesOnDevice)
        .add("codec_threads", d.codecThreads())
        .add("converted", d.stats().framesConverted);
  } catch (const std::exception& e) {
    line.add("error", reason(e));
  }
  line.print();
  return 0;
}

}  // namespace

int info() {
  const bool cuda = cudaAvailable();
  Line line("info");
  line.add("cuda", cuda)
      .add("devices", cuda ? int64_t(torch::cuda::device_count()) : int64_t(0))
      .add("cudnn", cuda && torch::cuda::cudnn_is_available())
      .add("built_with_cuda", bool(VIDFEAT_WITH_CUDA))
      .add("torch", TORCH_VERSION);
  line.print();
  return 0;
}

int main(int argc, char** argv) {
  try {
    if (argc == 2 && std::string(argv[1]) == "info") return info();
    const Args a = parseArgs(argc, argv);
    if (a.command == "decode") return decode(a);
    if (a.command != "parity" && a.command != "throughput" && a.command != "model")
      throw Error("gpu_probe: unknown command " + a.command +
                  " (model, parity, throughput, decode)");
    const Config cfg = Config::load(a.target, a.sets);
    if (a.command == "throughput") return throughput(a, cfg);
    std::string sig;
    parity(a, cfg, &sig);
    if (a.command == "parity") return 0;
    if (std::find(a.skipSignatures.begin(), a.skipSignatures.end(), sig) !=
        a.skipSignatures.end()) {
      Line("same_network").add("signature", sig).print();
      return 0;
    }
    return throughput(a, cfg);
  } catch (const std::exception& e) {
    Line("fatal").add("error", reason(e)).print();
    std::fprintf(stderr, "gpu_probe: %s\n", e.what());
    return 2;
  }
}
