#pragma once
// Float32 matrix products on the CPU through oneDNN's sgemm.
//
// LibTorch sends matmul / linear to the BLAS it was built with. Debian's is OpenBLAS, which on
// many CPUs (this machine's AVX-512 Xeon among them) detects only its generic "Prescott" kernels:
// ~31 GFLOP/s on 2 cores, where oneDNN's sgemm (oneDNN is already linked for the convolutions)
// runs 150-240 on the shapes of the MViTs' attention and MLPs. The matrix products of the MViTs
// and of the non-local block go through here.
//
// The same products, summed in oneDNN's order instead of OpenBLAS's (float rounding only). Inputs
// that are not dense float32 CPU tensors (CUDA, bf16, MKL-DNN layout), a build without oneDNN's
// header (VIDFEAT_ONEDNN_GEMM off: LibTorch built with CUDA, whose own BLAS is fast), or the
// switch off run LibTorch's op unchanged.
#include <torch/torch.h>

#include <functional>

namespace vidfeat::model::gemm {

// Process-wide switch, on by default where built; VIDFEAT_ONEDNN_GEMM=0 in the environment
// starts the process with it off (the plain LibTorch ops, for comparisons).
void setOnednnGemm(bool on);
bool onednnGemm();
// Whether this build has the oneDNN path at all.
bool onednnGemmBuilt();

// torch::matmul(a, b) for a [..., M, K] and b [..., K, N] of the same rank (>= 2) and the same
// leading (batch) sizes; any strides (a slice whose rows or columns are contiguous is read in
// place, others are made contiguous first). Other shapes go to torch::matmul.
torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b);

// What linear() applies to its result: nothing, GELU (erf form, torch::gelu's default), or
// CLIP's QuickGELU, y * sigmoid(1.702 * y).
enum class Activation { None, Gelu, QuickGelu };

// act(x weight^T + bias) for x [..., in], weight [out, in], bias [out] or undefined; the
// activation in place.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Activation act = Activation::None);
// The same with fc's weight and bias.
torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& fc,
                     Activation act = Activation::None);

// Adds a bias into a block of attention logits: rows [row0, row0 + rows) of (batch, head), each
// row `ld` floats apart, one float per key. Called from several threads at once.
using LogitBias = std::function<void(int64_t batch, int64_t head, int64_t row0, int64_t rows,
                                     float* logits, int64_t ld)>;

// Whether attention() runs its fused kernel for these operands (else the caller runs its own
// unfused ops: the switch off, a build without oneDNN, CUDA, bf16, ...).
bool fusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// softmax(q k^T * logitScale + bias) v for q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv]
// (last dimensions contiguous, or the transposed layout of a contiguous [.., D, L] tensor), one
// block of query rows at a time: each block's logits stay in the cache from the first product to
// the second (the unfused ops write and read the whole Lq x Lk matrix three times; MViT-B's first
// stage: 157 MB per block). The softmax is LibTorch's own kernel, the scale and the bias are added
// in the unfused ops' order (scale first, then `bias`), so only the products' summation order
// differs. The result is [B, H, Lq, Dv] viewed over storage laid out as [B, Lq, H, Dv] (so
// transpose(1, 2).reshape({B, Lq, H * Dv}) is free). Needs fusedAttention(q, k, v).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        double logitScale = 1.0, const LogitBias& bias = {});

}  // namespace vidfeat::model::gemm
