// Fused decomposed-bias softmax for the `fused` attention variant (seggpt_core/attention.py), AVX-512, bf16.
//
// For every row (head, query) of a block of logits over a (gh, gw) key grid:
//     e[kh, kw] = exp(logit[kh, kw] + rel_h[kh] + rel_w[kw] - max),   sum = sum of e
// written as bf16 (unnormalised) with the fp32 row sums; the caller divides the attention output by the sums.
// Two passes over each row, the second in L1: bf16 -> fp32 + bias + running max, then exp + sum + bf16 store.
// Built on first use by seggpt_core/cpu_kernels.py (torch.utils.cpp_extension), only on AVX-512 CPUs.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/cpu/vec/functional.h>
#include <immintrin.h>

#include <limits>
#include <tuple>
#include <vector>

namespace {

using at::vec::Vectorized;
using fVec = Vectorized<float>;

inline __m512 load_bf16(const at::BFloat16* p, __mmask16 mask) {
  __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// logits (m, r, gh * gw) bf16 contiguous; rel_h (m, r, gh), rel_w (m, r, gw) fp32 with a contiguous last dim.
std::tuple<torch::Tensor, torch::Tensor> bias_softmax(const torch::Tensor& logits, const torch::Tensor& rel_h,
                                                      const torch::Tensor& rel_w) {
  TORCH_CHECK(logits.dim() == 3 && logits.scalar_type() == at::kBFloat16 && logits.is_contiguous(),
              "bias_softmax: logits must be a contiguous (m, r, n) bf16 tensor");
  TORCH_CHECK(rel_h.scalar_type() == at::kFloat && rel_w.scalar_type() == at::kFloat && rel_h.stride(2) == 1 &&
                  rel_w.stride(2) == 1, "bias_softmax: rel_h / rel_w must be fp32 with a contiguous last dim");
  const int64_t m = logits.size(0), r = logits.size(1), n = logits.size(2);
  const int64_t gh = rel_h.size(2), gw = rel_w.size(2);
  TORCH_CHECK(n == gh * gw && rel_h.size(0) == m && rel_h.size(1) == r && rel_w.size(0) == m && rel_w.size(1) == r,
              "bias_softmax: shapes do not match");
  auto out = torch::empty_like(logits);
  auto sums = torch::empty({m, r, 1}, rel_h.options().memory_format(at::MemoryFormat::Contiguous));
  const at::BFloat16* S = logits.data_ptr<at::BFloat16>();
  const float* RH = rel_h.data_ptr<float>();
  const float* RW = rel_w.data_ptr<float>();
  at::BFloat16* O = out.data_ptr<at::BFloat16>();
  float* Z = sums.data_ptr<float>();
  const int64_t hs0 = rel_h.stride(0), hs1 = rel_h.stride(1), ws0 = rel_w.stride(0), ws1 = rel_w.stride(1);
  const int64_t full = gw / 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (gw % 16)) - 1);
  const float neg_inf = -std::numeric_limits<float>::infinity();

  at::parallel_for(0, m * r, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(n);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t i = row / r, j = row % r;
      const at::BFloat16* s = S + row * n;
      const float* rh = RH + i * hs0 + j * hs1;
      const float* rw = RW + i * ws0 + j * ws1;
      float* x = buf.data();
      __m512 vmax = _mm512_set1_ps(neg_inf);
      for (int64_t kh = 0; kh < gh; ++kh) {
        const __m512 h = _mm512_set1_ps(rh[kh]);
        const at::BFloat16* sr = s + kh * gw;
        float* xr = x + kh * gw;
        int64_t kw = 0;
        for (int64_t b = 0; b < full; ++b, kw += 16) {
          __m512 v = _mm512_add_ps(_mm512_add_ps(load_bf16(sr + kw, 0xFFFF), h), _mm512_loadu_ps(rw + kw));
          _mm512_storeu_ps(xr + kw, v);
          vmax = _mm512_max_ps(vmax, v);
        }
        if (tail) {
          __m512 v = _mm512_add_ps(_mm512_add_ps(load_bf16(sr + kw, tail), h), _mm512_maskz_loadu_ps(tail, rw + kw));
          _mm512_mask_storeu_ps(xr + kw, tail, v);
          vmax = _mm512_mask_max_ps(vmax, tail, vmax, v);
        }
      }
      const float mx = _mm512_reduce_max_ps(vmax);
      const fVec vm(mx);
      fVec vsum(0.f);
      at::BFloat16* o = O + row * n;
      int64_t k = 0;
      for (; k + 2 * fVec::size() <= n; k += 2 * fVec::size()) {
        const fVec e0 = (fVec::loadu(x + k) - vm).exp_u20();
        const fVec e1 = (fVec::loadu(x + k + fVec::size()) - vm).exp_u20();
        vsum = vsum + e0 + e1;
        at::vec::convert_float_bfloat16(e0, e1).store(o + k);
      }
      float sum = at::vec::vec_reduce_all<float>([](fVec& a, fVec& b) { return a + b; }, vsum);
      for (; k < n; ++k) {
        const float e = std::exp(x[k] - mx);
        sum += e;
        o[k] = at::BFloat16(e);
      }
      Z[row] = sum;
    }
  });
  return {out, sums};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("bias_softmax", &bias_softmax, "exp(logits + rel_h + rel_w - rowmax) as bf16, and the fp32 row sums");
}
