#pragma once
// Decoding the first video stream of a file with FFmpeg's libraries, in-process.
//
// Frames come out one at a time in presentation order with their presentation time in seconds;
// pixel conversion is a separate, optional step so that frames no clip uses are decoded (the
// codec needs them) but never colour-converted or resized. Memory is bounded whatever the length
// of the video: the decoder holds at most a small reorder window of frames.
//
// Thread safety: a VideoDecoder is not thread-safe; use one per thread. Different decoders may
// run concurrently.
#include <cstdint>
#include <memory>
#include <string>

#include "vidfeat/common/error.h"
#include "vidfeat/common/resize_filter.h"

namespace vidfeat {

// Limits on frame sizes an untrusted file may ask for; a video beyond them fails with its reason
// instead of sizing allocations by its claim.
// - Pixels of one decoded frame: 8192x8192 (8K UHD, 7680x4320, and DCI 8K fit). The header's size
//   is checked at open, and FFmpeg's decoder refuses larger pictures mid-stream (AVCodecContext
//   max_pixels: a broken frame, skipped and counted), so no decoded frame can be larger.
//   (FFmpeg's own limit is about 16384x16384: one RGB frame of that is 768 MiB.)
// - Aspect ratio: 32:1. The frame is scaled to the model's short side, so a 16384x2 frame at a
//   64-pixel short side would be 524288x64 (96 MiB each, a clip holds dozens); at 32:1 and a
//   320-pixel short side a frame is 9.4 MiB. Real video is at most about 4:1.
constexpr int64_t kMaxFramePixels = int64_t(8192) * 8192;
constexpr int kMaxAspectRatio = 32;

// --video-timeout auto: max(kMinAutoTimeoutSeconds, file bytes / kAutoTimeoutBytesPerSecond),
// i.e. an hour, or one second per 100 KB of file when that is longer (a 1 GB film: 2.8 h). Generous
// for any real video and model (decoding waits on the model too), and still a bound on a file
// that makes FFmpeg run forever. The file's size, not its header: a header's duration can lie.
constexpr double kMinAutoTimeoutSeconds = 3600;
constexpr double kAutoTimeoutBytesPerSecond = 100e3;
double defaultVideoTimeoutSeconds(const std::string& path);

struct DecodeOptions {
  // Codec threads (frame/slice threading). 0 lets FFmpeg choose from the core count.
  int threads = 0;
  // Watchdog: give up on the video this many seconds after opening it (0 = never). Checked by
  // FFmpeg's interrupt callback during demuxer I/O and before every frame; DecodeTimeout is thrown.
  // Negative: defaultVideoTimeoutSeconds(path) (vidfeat extract's default, --video-timeout auto).
  double timeoutSeconds = 0.0;
  // --decode-device: "cpu", or "cuda" / "cuda:N" to decode with NVDEC through FFmpeg's hwaccel
  // (frames stay on the GPU until convert() copies the one it needs back; colour conversion and
  // resizing are the CPU path's, so the pixels are those of CPU decoding). When FFmpeg has no
  // CUDA device (no driver or GPU, or an FFmpeg built without it) or NVDEC cannot decode the
  // stream (codec, profile, size), decoding falls back to the CPU with one warning per reason
  // per process.
  std::string device = "cpu";
};

// Checks a --decode-device value ("cpu", "cuda", "cuda:N"); throws Error naming the option.
void checkDecodeDevice(const std::string& device);

// The watchdog fired (DecodeOptions::timeoutSeconds).
class DecodeTimeout : public InputError {
 public:
  using InputError::InputError;
};

// What the container and stream say, read at open time. Header values are hints only: the true
// frame count is what decoding yields (DecodeStats::framesDecoded).
struct StreamInfo {
  std::string codec;   // e.g. "h264"
  int codedWidth = 0;  // as stored in the stream
  int codedHeight = 0;
  int rotation = 0;             // clockwise display rotation in degrees: 0, 90, 180 or 270
  int displayWidth = 0;         // after rotation (video_90.mov: 320)
  int displayHeight = 0;        // after rotation (video_90.mov: 568)
  double avgFps = 0.0;          // stream average frame rate, 0 when unknown
  double startTime = 0.0;       // stream start offset in seconds (kept in frame times, not removed)
  double durationHint = -1.0;   // seconds, -1 when the container has none
  int64_t frameCountHint = -1;  // nb_frames from the header, -1 when absent
};

struct DecodedFrame {
  int64_t index = 0;  // 0-based position among decoded frames, in presentation order
  double pts = 0.0;   // presentation time in seconds (stream time base, start offset kept)
};

struct DecodeStats {
  int64_t framesDecoded = 0;    // frames returned by next()
  int64_t framesConverted = 0;  // frames passed through convert()
  int64_t decodeErrors = 0;     // broken packets/frames skipped
  int64_t framesCorrupt = 0;    // frames returned although the decoder flagged them as corrupt
                                // (error-concealed pictures; ffprobe counts them too)
  int64_t framesLate = 0;       // frames too far out of order for the reorder window, returned
                                // with a pts below their predecessor's
  int64_t framesOnDevice = 0;   // frames NVDEC decoded (DecodeOptions::device cuda); 0 on the CPU
  int64_t errorsLogged = 0;     // error messages FFmpeg's decoder logged (its threads' included),
                                // as of the last next(): damage it may have concealed without
                                // rejecting a packet or flagging a frame
};

class VideoDecoder {
 public:
  // Opens `path` and its first video stream. Throws InputError (naming the file and FFmpeg's
  // reason) when it cannot be opened, has no video stream, has no decoder for its codec, or its
  // header gives no frame size or one beyond kMaxFramePixels / kMaxAspectRatio.
  explicit VideoDecoder(const std::string& path, const DecodeOptions& options = {});
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  const std::string& path() const;
  const StreamInfo& info() const;
  const DecodeStats& stats() const;
  // Codec threads the decoder runs (FFmpeg's choice when DecodeOptions::threads is 0); 1 when it
  // decodes on the calling thread alone (and with NVDEC).
  int codecThreads() const;
  // Frames come from more than one codec thread (frame or slice threading). The pictures of a
  // good stream are the same either way, but FFmpeg's frame-threaded error concealment of a
  // damaged one depends on the thread count and on timing (a bit-flipped H.264 stream decoded
  // twice with the same count gave different pictures), so only a single-threaded decode of a
  // damaged stream is reproducible (docs/DESIGN.md, "Determinism").
  bool threaded() const;

  // Output size of convert(), in display orientation (after rotation). Defaults to
  // displayWidth x displayHeight. Must be called before the first convert() that uses it.
  // `filter`: how convert() scales (torch's bilinear, or Pillow's bicubic for CLIP).
  void setOutputSize(int width, int height, ResizeFilter filter = ResizeFilter::TorchBilinear);
  int outputWidth() const;
  int outputHeight() const;

  // Decodes the next frame in presentation order. Returns false at the end of the stream.
  // Broken packets or frames are skipped and counted in stats().decodeErrors.
  bool next(DecodedFrame& frame);

  // Converts the frame last returned by next() (still available after next() returned false at
  // the end, so padding can use the last frame without converting every frame) to packed RGB24
  // (outputHeight rows of outputWidth*3 bytes, rotation applied): libswscale colour conversion at
  // the decoded size, then a bilinear resize matching torch's interpolate(mode="bilinear",
  // align_corners=False).
  void convert(uint8_t* rgb);
  // The same frame at another size and filter than setOutputSize's (a run of several models, each
  // with its own geometry, from one decode): `width` x `height` in display orientation. Each
  // size keeps its own converter state.
  void convertTo(uint8_t* rgb, int width, int height, ResizeFilter filter);
  // Keeps the frame before the current one as well (a reference: no copy), so that it can still be
  // converted once the next frame has shown whether a clip takes it (clips by time, --fps: a
  // frame is on screen until the next one's time). Off by default.
  void setKeepPrevious(bool on);
  // convertTo of the frame before the current one; throws std::logic_error without one (or
  // without setKeepPrevious).
  void convertPreviousTo(uint8_t* rgb, int width, int height, ResizeFilter filter);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidfeat
