#include "kernels/depthwise_conv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>

#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace {

// One channel: input T x H x W, output To x Ho x Wo, kernel KT x KH x KW, strides and paddings.
// The input is first laid out as "phase planes": for every input frame and every spatial phase
// (a, b) in [0, sh) x [0, sw), the plane Q[r][c] = padded[sh * r + a][sw * c + b] (zero outside the
// input), Hq x Wq. Then tap (kh, kw) of output (ho, wo) reads Q_(kh % sh, kw % sw)[ho + kh / sh]
// [wo + kw / sw]: for the output laid out Wq wide, every tap is ONE contiguous shifted multiply-add
// over the whole output frame (long vectors whatever the row length; no edge cases), and the
// Wq - Wo extra columns are dropped when the frame is copied out.
struct Geometry {
  int64_t T, H, W, To, Ho, Wo, KT, KH, KW, st, sh, sw, pt, ph, pw;
  int64_t Hq, Wq;  // a phase plane
};

int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

// acc[j] += k0 * p0[j] + k1 * p1[j] + k2 * p2[j]: three taps in one pass over the output frame.
__attribute__((always_inline)) inline void taps3(float* __restrict acc, const float* __restrict p0,
                                                 const float* __restrict p1,
                                                 const float* __restrict p2, float k0, float k1,
                                                 float k2, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += k0 * p0[j] + k1 * p1[j] + k2 * p2[j];
}

__attribute__((always_inline)) inline void tap1(float* __restrict acc, const float* __restrict p0,
                                                float k0, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += k0 * p0[j];
}

struct Tap {
  const float* src;
  float k;
};

// One channel plane; compiled for AVX-512, AVX2 and the baseline, chosen once at load time.
// q: T * sh * sw * Hq * Wq floats, acc: Ho * Wq floats, taps: KH * KW entries (scratch).
__attribute__((target_clones("avx512f", "avx2", "default"))) void convolvePlane(
    const float* in, const float* w, float bias, float* out, const Geometry& g, float* q,
    float* acc, Tap* taps) {
  const int64_t phases = g.sh * g.sw, qPlane = g.Hq * g.Wq;
  // 1. The phase planes of every input frame.
  for (int64_t t = 0; t < g.T; ++t) {
    for (int64_t a = 0; a < g.sh; ++a) {
      for (int64_t b = 0; b < g.sw; ++b) {
        float* qp = q + (t * phases + a * g.sw + b) * qPlane;
        for (int64_t r = 0; r < g.Hq; ++r) {
          float* qr = qp + r * g.Wq;
          const int64_t h = g.sh * r + a - g.ph;
          if (h < 0 || h >= g.H) {
            std::fill(qr, qr + g.Wq, 0.0f);
            continue;
          }
          const float* row = in + (t * g.H + h) * g.W;
          for (int64_t c = 0; c < g.Wq; ++c) {
            const int64_t x = g.sw * c + b - g.pw;
            qr[c] = x >= 0 && x < g.W ? row[x] : 0.0f;
          }
        }
      }
    }
  }
  // 2. Every output frame: bias, then the taps of each valid input frame, three at a time.
  const int64_t n = (g.Ho - 1) * g.Wq + g.Wo;  // the last row needs only its Wo valid columns
  for (int64_t to = 0; to < g.To; ++to) {
    std::fill(acc, acc + n, bias);
    for (int64_t kt = 0; kt < g.KT; ++kt) {
      const int64_t ti = to * g.st - g.pt + kt;
      if (ti < 0 || ti >= g.T) continue;  // zero padding in time
      int64_t count = 0;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const float* plane = q + (ti * phases + (kh % g.sh) * g.sw + kw % g.sw) * qPlane;
          taps[count++] =
              Tap{plane + (kh / g.sh) * g.Wq + kw / g.sw, w[(kt * g.KH + kh) * g.KW + kw]};
        }
      }
      int64_t i = 0;
      for (; i + 3 <= count; i += 3)
        taps3(acc, taps[i].src, taps[i + 1].src, taps[i + 2].src, taps[i].k, taps[i + 1].k,
              taps[i + 2].k, n);
      for (; i < count; ++i) tap1(acc, taps[i].src, taps[i].k, n);
    }
    float* o = out + to * g.Ho * g.Wo;
    for (int64_t ho = 0; ho < g.Ho; ++ho)
      std::copy(acc + ho * g.Wq, acc + ho * g.Wq + g.Wo, o + ho * g.Wo);
  }
}

}  // namespace

bool depthwiseConv3dApplies(const at::Tensor& x, const at::Tensor& weight,
                            const std::vector<int64_t>& dilation, int64_t groups) {
  if (!x.defined() || x.is_mkldnn() || !x.device().is_cpu() || x.scalar_type() != at::kFloat ||
      x.dim() != 5) {
    return false;
  }
  if (!weight.defined() || weight.dim() != 5 || weight.scalar_type() != at::kFloat ||
      !weight.device().is_cpu()) {
    return false;
  }
  if (std::any_of(dilation.begin(), dilation.end(), [](int64_t d) { return d != 1; })) return false;
  return groups == x.size(1) && weight.size(0) == groups && weight.size(1) == 1;
}

at::Tensor depthwiseConv3d(const at::Tensor& xIn, const at::Tensor& weightIn,
                           const at::Tensor& biasIn, const std::vector<int64_t>& stride,
                           const std::vector<int64_t>& padding) {
  if (stride.size() != 3 || padding.size() != 3)
    throw Error("internal: depthwiseConv3d needs 3-D stride and padding");
  const at::Tensor x = xIn.contiguous(), w = weightIn.contiguous();
  const at::Tensor b = biasIn.defined() ? biasIn.contiguous() : at::Tensor();
  const int64_t N = x.size(0), C = x.size(1);
  Geometry g{x.size(2),  x.size(3),  x.size(4),  0,         0,         0,
             w.size(2),  w.size(3),  w.size(4),  stride[0], stride[1], stride[2],
             padding[0], padding[1], padding[2], 0,         0};
  g.To = outSize(g.T, g.KT, g.st, g.pt);
  g.Ho = outSize(g.H, g.KH, g.sh, g.ph);
  g.Wo = outSize(g.W, g.KW, g.sw, g.pw);
  if (g.To < 1 || g.Ho < 1 || g.Wo < 1)
    throw Error("depthwise conv3d: the input is smaller than the kernel");
  at::Tensor y = at::empty({N, C, g.To, g.Ho, g.Wo}, x.options());
  // A kernel that is 1x1 in space with no spatial stride or padding sees each frame as one row.
  if (g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0) {
    g.W = g.Wo = g.H * g.W;
    g.H = g.Ho = 1;
  }
  g.Hq = g.Ho + (g.KH - 1) / g.sh;
  g.Wq = g.Wo + (g.KW - 1) / g.sw;
  const int64_t inPlane = g.T * g.H * g.W, outPlane = g.To * g.Ho * g.Wo,
                kSize = g.KT * g.KH * g.KW;
  const size_t qSize = size_t(g.T * g.sh * g.sw * g.Hq * g.Wq), accSize = size_t(g.Ho * g.Wq);
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> q(qSize), acc(accSize);  // once per task, reused for its planes
    std::vector<Tap> taps(size_t(g.KH * g.KW));
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      convolvePlane(xp + p * inPlane, wp + c * kSize, bp ? bp[c] : 0.0f, yp + p * outPlane, g,
                    q.data(), acc.data(), taps.data());
    }
  });
  return y;
}

}  // namespace vidfeat::model
