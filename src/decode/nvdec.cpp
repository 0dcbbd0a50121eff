#include "nvdec.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <string>

#include "frame_convert.h"
#include "vidfeat/common/error.h"
#include "vidfeat/decode/video_decoder.h"

namespace vidfeat {

namespace {

using ffmpeg::errorString;

// One warning per `key` per process (the NVDEC fallbacks: every video would repeat them).
void warnOnce(const std::string& key, const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mutex);
  if (said.insert(key).second) spdlog::warn("{}", message);
}

// The process's CUDA device context for NVDEC on GPU `index`, created at first use and shared by
// every decoder (creating one costs a CUDA context); nullptr, with FFmpeg's reason in `why`, when
// it cannot be created (no driver, no GPU, an FFmpeg without CUDA). Borrowed: a decoder takes its
// own reference (av_buffer_ref). A failure is remembered, not retried for every video.
AVBufferRef* cudaDeviceContext(int index, std::string& why) {
  static std::mutex mutex;
  static std::map<int, ffmpeg::UniqueAVBufferRef> devices;
  static std::map<int, std::string> failures;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = devices.find(index); it != devices.end()) return it->second.get();
  if (auto it = failures.find(index); it != failures.end()) {
    why = it->second;
    return nullptr;
  }
  AVBufferRef* raw = nullptr;
  const int rc = av_hwdevice_ctx_create(&raw, AV_HWDEVICE_TYPE_CUDA, std::to_string(index).c_str(),
                                        nullptr, 0);
  if (rc < 0 || raw == nullptr) {
    why = failures[index] = errorString(rc < 0 ? rc : AVERROR_UNKNOWN);
    return nullptr;
  }
  return (devices[index] = ffmpeg::UniqueAVBufferRef(raw)).get();
}

}  // namespace

int cudaIndex(const std::string& device) {
  if (device == "cpu") return -1;
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) != 0 || device.size() == 5 || device.size() > 8) return -2;
  for (size_t i = 5; i < device.size(); ++i) {
    if (device[i] < '0' || device[i] > '9') return -2;
  }
  return std::stoi(device.substr(5));
}

void checkDecodeDevice(const std::string& device) {
  if (cudaIndex(device) < -1) {
    throw Error("--decode-device must be cpu, cuda or cuda:N, got '" + device + "'");
  }
}

bool Nvdec::setUp(AVCodecContext* codec, const AVCodec* decoder, const std::string& device,
                  const std::string& path, int heldFrames) {
  checkDecodeDevice(device);
  device_ = device;
  path_ = path;
  const AVCodecHWConfig* config = nullptr;
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* c = avcodec_get_hw_config(decoder, i);
    if (c == nullptr) break;
    if ((c->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) &&
        c->device_type == AV_HWDEVICE_TYPE_CUDA) {
      config = c;
      break;
    }
  }
  if (config == nullptr) {
    warnOnce(std::string("nvdec-codec:") + decoder->name,
             std::string("--decode-device ") + device + ": FFmpeg's " + decoder->name +
                 " decoder has no NVDEC (CUDA) support; decoding those videos on the CPU (first: " +
                 path + ")");
    return false;
  }
  std::string why;
  AVBufferRef* context = cudaDeviceContext(std::max(0, cudaIndex(device)), why);
  if (context == nullptr) {
    warnOnce("nvdec-device:" + device, "--decode-device " + device +
                                           ": no CUDA device for NVDEC (" + why +
                                           "); decoding on the CPU");
    return false;
  }
  codec->hw_device_ctx = av_buffer_ref(context);
  if (codec->hw_device_ctx == nullptr) throw std::bad_alloc();
  format_ = config->pix_fmt;
  // Surfaces held outside the decoder: the caller's (its reorder window and current frame).
  codec->extra_hw_frames = heldFrames;
  // The GPU decodes; CPU frame threads would only multiply the surfaces held (NVDEC has at most
  // 32) and could make the hwaccel refuse the stream.
  codec->thread_count = 1;
  host_.reset(av_frame_alloc());
  if (!host_) throw std::bad_alloc();
  return true;
}

AVPixelFormat Nvdec::pickFormat(AVCodecContext* ctx, const AVPixelFormat* formats) const {
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f) {
    if (*f == format_) return *f;
  }
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(*f);
    if (d != nullptr && !(d->flags & AV_PIX_FMT_FLAG_HWACCEL)) {
      warnOnce(std::string("nvdec-stream:") + avcodec_get_name(ctx->codec_id) + ":" +
                   (av_get_pix_fmt_name(*f) ? av_get_pix_fmt_name(*f) : "?"),
               "--decode-device " + device_ + ": NVDEC cannot decode " + path_ + " (" +
                   avcodec_get_name(ctx->codec_id) + ", " + std::to_string(ctx->width) + "x" +
                   std::to_string(ctx->height) + "); such streams are decoded on the CPU");
      return *f;
    }
  }
  return AV_PIX_FMT_NONE;
}

const AVFrame* Nvdec::hostCopy(const AVFrame* frame) {
  av_frame_unref(host_.get());
  const int rc = av_hwframe_transfer_data(host_.get(), frame, 0);
  if (rc < 0) {
    throw InputError(path_, "cannot copy an NVDEC frame to host memory: " + errorString(rc));
  }
  const AVFrame* planar = planarYuv(host_.get(), planar_);
  if (planar == nullptr) throw std::bad_alloc();
  return planar;
}

}  // namespace vidfeat
