#pragma once
// NVDEC through FFmpeg's CUDA hwaccel for one VideoDecoder (DecodeOptions::device "cuda" or
// "cuda:N"; private to src/decode): the set-up before the decoder opens, the pixel format chosen
// when the stream starts, and the copy of a GPU frame back to host memory in the layout CPU
// decoding gives. Anything missing (an FFmpeg without CUDA, no device, a stream NVDEC refuses)
// falls back to CPU decoding with one warning per reason per process.
#include <string>

#include "ffmpeg.h"

namespace vidfeat {

// "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N; anything else -2.
int cudaIndex(const std::string& device);

// Not thread-safe: one per VideoDecoder, used from its thread (and FFmpeg's get_format on it).
class Nvdec {
 public:
  // Asks FFmpeg to decode with NVDEC on `device`: `decoder`'s CUDA hwaccel and the process's CUDA
  // device context are set on `codec` (allocated, not yet opened). `heldFrames`: decoded frames
  // the caller holds outside the decoder (NVDEC surfaces it must keep spare). Returns false, with
  // a warning once per reason, when NVDEC cannot be used: the stream is decoded on the CPU. On
  // true the caller sets `codec->get_format` to a function calling pickFormat (the context's
  // `opaque` is the caller's). Throws Error for a malformed `device` (checkDecodeDevice).
  bool setUp(AVCodecContext* codec, const AVCodec* decoder, const std::string& device,
             const std::string& path, int heldFrames);

  // FFmpeg's get_format: the GPU format when offered, else (NVDEC refused the stream: its
  // profile, bit depth or size; FFmpeg calls again without the GPU format after a failed hwaccel
  // set-up) the decoder's first software format, with a warning.
  AVPixelFormat pickFormat(AVCodecContext* ctx, const AVPixelFormat* formats) const;

  // `frame` lies in GPU memory (NVDEC decoded it).
  bool holds(const AVFrame* frame) const {
    return format_ != AV_PIX_FMT_NONE && frame->format == format_;
  }

  // A frame NVDEC decoded, copied to host memory (NV12, or P010/P016 for more than 8 bits) and
  // repacked into the planar format CPU decoding gives (planarYuv), so that its RGB is CPU
  // decoding's. Valid until the next call. Throws InputError when the copy fails.
  const AVFrame* hostCopy(const AVFrame* frame);

 private:
  std::string device_;
  std::string path_;
  AVPixelFormat format_ = AV_PIX_FMT_NONE;  // frames in GPU memory; NONE while decoding on the CPU
  ffmpeg::UniqueAVFrame host_;              // the host copy of the frame last converted
  ffmpeg::UniqueAVFrame planar_;            // host_ repacked planar
};

}  // namespace vidfeat
