#pragma once
// How frames are scaled to a model's size: shared by decode/ (which resizes) and clip/ (which
// sizes and crops), so neither room includes the other for it.

namespace vidfeat {

enum class ResizeFilter {
  // torch.nn.functional.interpolate(mode="bilinear", align_corners=False): PySlowFast's test-time
  // scale (src/decode/frame_convert.h, BilinearResizer).
  TorchBilinear,
  // Pillow's Image.resize(..., BICUBIC), antialiased: torchvision's Resize on a PIL image, as in
  // CLIP's preprocess (PilBicubicResizer).
  PilBicubic,
};

}  // namespace vidfeat
