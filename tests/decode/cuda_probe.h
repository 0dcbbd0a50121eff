#pragma once
// Whether this machine can decode with NVDEC through FFmpeg, probed the way the decoder sets it up
// (src/decode/nvdec.cpp, Nvdec::setUp): FFmpeg's H.264 decoder has a CUDA hwaccel, and a
// CUDA device context can be created. Tests of --decode-device cuda that must see NVDEC work skip,
// saying why, where it cannot.
#include <string>

#include "../../src/decode/ffmpeg.h"

namespace vidfeat::decodetest {

// "" when NVDEC is usable on CUDA device 0, else the reason it is not.
inline std::string nvdecUnavailableReason() {
  const AVCodec* h264 = avcodec_find_decoder(AV_CODEC_ID_H264);
  if (h264 == nullptr) return "FFmpeg has no H.264 decoder";
  bool hwaccel = false;
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* c = avcodec_get_hw_config(h264, i);
    if (c == nullptr) break;
    hwaccel |= (c->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) &&
               c->device_type == AV_HWDEVICE_TYPE_CUDA;
  }
  if (!hwaccel) return "this FFmpeg's H.264 decoder has no NVDEC (CUDA) hwaccel";
  AVBufferRef* raw = nullptr;
  const int rc = av_hwdevice_ctx_create(&raw, AV_HWDEVICE_TYPE_CUDA, "0", nullptr, 0);
  ffmpeg::UniqueAVBufferRef device(raw);
  if (rc < 0 || raw == nullptr) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, text, sizeof text);
    return std::string("no CUDA device for NVDEC (FFmpeg's av_hwdevice_ctx_create: ") + text + ")";
  }
  return "";
}

}  // namespace vidfeat::decodetest
