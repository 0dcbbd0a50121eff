#include "kernels/gemm.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "vidfeat/build_config.h"
#include "vidfeat/common/error.h"

#if VIDFEAT_ONEDNN_GEMM
#include <oneapi/dnnl/dnnl.h>
#endif

namespace vidfeat::model::gemm {

namespace {

bool fromEnvironment() {
  const char* v = std::getenv("VIDFEAT_ONEDNN_GEMM");
  return !(v && std::string(v) == "0");
}
std::atomic<bool> gOn{fromEnvironment()};

#if VIDFEAT_ONEDNN_GEMM

// How sgemm (row-major) reads a rows x cols matrix stored at strides (sr, sc): as it is ('N'), as
// the transpose of a row-major matrix ('T'), or not in place (false).
struct Operand {
  char trans = 'N';
  int64_t ld = 0;
};

bool inPlace(int64_t rows, int64_t cols, int64_t sr, int64_t sc, Operand& op) {
  if ((cols == 1 || sc == 1) && (rows == 1 || sr >= cols)) {
    op = {'N', rows == 1 ? cols : sr};
    return true;
  }
  if ((rows == 1 || sr == 1) && (cols == 1 || sc >= rows)) {
    op = {'T', cols == 1 ? rows : sc};
    return true;
  }
  return false;
}

// Autograd would not see the product: leave it to LibTorch when a gradient is being recorded.
bool recording(const torch::Tensor& t) {
  return t.defined() && t.requires_grad() && torch::GradMode::is_enabled();
}

bool usable(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.layout() == torch::kStrided &&
         t.scalar_type() == torch::kFloat32 && t.dim() >= 2 && t.numel() > 0;
}

void sgemm(const Operand& a, const Operand& b, int64_t M, int64_t N, int64_t K, const float* A,
           const float* B, float beta, float* C, int64_t ldc) {
  const dnnl_status_t s =
      dnnl_sgemm(a.trans, b.trans, M, N, K, 1.0f, A, a.ld, B, b.ld, beta, C, ldc);
  if (s != dnnl_success) {
    throw Error("oneDNN sgemm failed (status " + std::to_string(int(s)) + ") on a " +
                std::to_string(M) + "x" + std::to_string(K) + " by " + std::to_string(K) + "x" +
                std::to_string(N) + " product");
  }
}

#endif

}  // namespace

void setOnednnGemm(bool on) { gOn = on; }
bool onednnGemm() { return gOn && onednnGemmBuilt(); }

bool onednnGemmBuilt() {
#if VIDFEAT_ONEDNN_GEMM
  return true;
#else
  return false;
#endif
}

torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b) {
#if VIDFEAT_ONEDNN_GEMM
  if (!gOn || !usable(a) || !usable(b) || a.dim() != b.dim() || recording(a) || recording(b)) {
    return torch::matmul(a, b);
  }
  const int64_t d = a.dim();
  if (a.sizes().slice(0, d - 2) != b.sizes().slice(0, d - 2) || a.size(d - 1) != b.size(d - 2)) {
    return torch::matmul(a, b);
  }
  RECORD_FUNCTION("vidfeat::gemm::matmul", std::vector<c10::IValue>());  // seen by profilers
  const int64_t M = a.size(d - 2), K = a.size(d - 1), N = b.size(d - 1);
  Operand opA, opB;
  torch::Tensor A = a, B = b;
  if (!inPlace(M, K, A.stride(d - 2), A.stride(d - 1), opA)) {
    A = A.contiguous();
    inPlace(M, K, A.stride(d - 2), A.stride(d - 1), opA);
  }
  if (!inPlace(K, N, B.stride(d - 2), B.stride(d - 1), opB)) {
    B = B.contiguous();
    inPlace(K, N, B.stride(d - 2), B.stride(d - 1), opB);
  }
  std::vector<int64_t> outSizes(a.sizes().begin(), a.sizes().end());
  outSizes[d - 1] = N;
  auto C = torch::empty(outSizes, a.options());
  int64_t batches = 1;
  for (int64_t i = 0; i < d - 2; ++i) batches *= a.size(i);
  at::internal::lazy_init_num_threads();  // sgemm runs on this thread's OpenMP team size
  const float* pa = A.data_ptr<float>();
  const float* pb = B.data_ptr<float>();
  float* pc = C.data_ptr<float>();
  for (int64_t n = 0; n < batches; ++n) {
    int64_t offA = 0, offB = 0, rest = n;
    for (int64_t i = d - 3; i >= 0; --i) {
      const int64_t idx = rest % a.size(i);
      rest /= a.size(i);
      offA += idx * A.stride(i);
      offB += idx * B.stride(i);
    }
    sgemm(opA, opB, M, N, K, pa + offA, pb + offB, 0.0f, pc + n * M * N, N);
  }
  return C;
#else
  return torch::matmul(a, b);
#endif
}

namespace {

// QuickGELU as CLIP writes it, x * torch.sigmoid(1.702 * x), into y.
void quickGeluInPlace(torch::Tensor& y) { y.mul_(torch::sigmoid(y * 1.702)); }

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& fc, Activation act) {
  return linear(x, fc->weight, fc->bias, act);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                     Activation act) {
  auto unfused = [&] {
    auto y = torch::nn::functional::linear(x, w, bias);
    if (act == Activation::Gelu) return torch::gelu(y);
    if (act == Activation::QuickGelu) quickGeluInPlace(y);
    return y;
  };
#if VIDFEAT_ONEDNN_GEMM
  if (!gOn || !usable(w) || !x.defined() || x.dim() < 1 || x.device() != w.device() ||
      x.scalar_type() != torch::kFloat32 || x.layout() != torch::kStrided || x.numel() == 0 ||
      recording(x) || recording(w) || recording(bias) || x.size(-1) != w.size(1)) {
    return unfused();  // (a size mismatch: LibTorch's own error)
  }
  RECORD_FUNCTION("vidfeat::gemm::linear", std::vector<c10::IValue>());
  const int64_t K = w.size(1), N = w.size(0);
  auto X = x.reshape({-1, K});
  Operand opX;
  if (!inPlace(X.size(0), K, X.stride(0), X.stride(1), opX)) {
    X = X.contiguous();
    inPlace(X.size(0), K, X.stride(0), X.stride(1), opX);
  }
  auto W = w.contiguous();  // [N, K]: its transpose is the K x N operand
  const Operand opW{'T', K};
  const int64_t M = X.size(0);
  std::vector<int64_t> outSizes(x.sizes().begin(), x.sizes().end());
  outSizes.back() = N;
  auto C = torch::empty({M, N}, x.options());
  // C = bias + X W^T as addmm computes it (the bias written into C, then sgemm with beta 1), the
  // activation in place: no temporaries the size of the output.
  const float* px = X.data_ptr<float>();
  float* pc = C.data_ptr<float>();
  if (bias.defined()) {
    const auto biasDense = bias.contiguous();
    const float* pb = biasDense.data_ptr<float>();
    at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) std::copy(pb, pb + N, pc + r * N);
    });
  }
  at::internal::lazy_init_num_threads();
  sgemm(opX, opW, M, N, K, px, W.data_ptr<float>(), bias.defined() ? 1.0f : 0.0f, pc, N);
  if (act == Activation::Gelu) at::gelu_out(C, C);
  if (act == Activation::QuickGelu) quickGeluInPlace(C);
  return C.view(outSizes);
#else
  return unfused();
#endif
}

bool fusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if VIDFEAT_ONEDNN_GEMM
  if (!gOn) return false;
  for (const auto* t : {&q, &k, &v}) {
    if (!usable(*t) || t->dim() != 4 || recording(*t)) return false;
  }
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) ||
      v.size(1) != q.size(1) || k.size(3) != q.size(3) || v.size(2) != k.size(2)) {
    return false;
  }
  Operand op;
  return inPlace(q.size(2), q.size(3), q.stride(2), q.stride(3), op) &&
         inPlace(k.size(3), k.size(2), k.stride(3), k.stride(2), op) &&
         inPlace(v.size(2), v.size(3), v.stride(2), v.stride(3), op);
#else
  (void)q, (void)k, (void)v;
  return false;
#endif
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        double logitScale, const LogitBias& bias) {
  if (!fusedAttention(q, k, v)) {
    throw Error("gemm::attention: operands the fused kernel does not take (see fusedAttention)");
  }
#if VIDFEAT_ONEDNN_GEMM
  RECORD_FUNCTION("vidfeat::gemm::attention", std::vector<c10::IValue>());
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Lk = k.size(2), Dv = v.size(3);
  Operand opQ, opK, opV;
  inPlace(Lq, D, q.stride(2), q.stride(3), opQ);
  inPlace(D, Lk, k.stride(3), k.stride(2), opK);  // k^T, the second operand of q k^T
  inPlace(Lk, Dv, v.stride(2), v.stride(3), opV);
  // Query rows per block: the block's logits (rows x Lk floats) within ~768 KiB, a core's L2 on
  // the Xeons this was measured on, at most 256 rows, at least 16.
  const int64_t rowsPerBlock =
      std::min<int64_t>(Lq, std::max<int64_t>(16, std::min<int64_t>(256, (192 * 1024) / Lk)));
  const int64_t blocks = (Lq + rowsPerBlock - 1) / rowsPerBlock;
  auto out = torch::empty({B, Lq, H, Dv}, q.options());
  const float* pq = q.data_ptr<float>();
  const float* pk = k.data_ptr<float>();
  const float* pv = v.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const auto floatOpts = torch::TensorOptions().dtype(torch::kFloat32);
  at::internal::lazy_init_num_threads();
  // One task per (batch, head, block); inside the parallel region oneDNN's sgemm and LibTorch's
  // softmax run on the calling thread.
  at::parallel_for(0, B * H * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> logits(size_t(rowsPerBlock * Lk));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t blk = task % blocks, bh = task / blocks, h = bh % H, b = bh / H;
      const int64_t row0 = blk * rowsPerBlock, rows = std::min(rowsPerBlock, Lq - row0);
      const float* qb = pq + b * q.stride(0) + h * q.stride(1) + row0 * q.stride(2);
      const float* kb = pk + b * k.stride(0) + h * k.stride(1);
      const float* vb = pv + b * v.stride(0) + h * v.stride(1);
      sgemm(opQ, opK, rows, Lk, D, qb, kb, 0.0f, logits.data(), Lk);
      auto block = torch::from_blob(logits.data(), {rows, Lk}, floatOpts);
      if (logitScale != 1.0) block.mul_(logitScale);
      if (bias) bias(b, h, row0, rows, logits.data(), Lk);
      at::_softmax_out(block, block, 1, false);
      const Operand opP{'N', Lk};
      sgemm(opP, opV, rows, Dv, Lk, logits.data(), vb, 0.0f, po + ((b * Lq + row0) * H + h) * Dv,
            H * Dv);
    }
  });
  return out.permute({0, 2, 1, 3});
#else
  (void)logitScale, (void)bias;
  return {};
#endif
}

}  // namespace vidfeat::model::gemm
