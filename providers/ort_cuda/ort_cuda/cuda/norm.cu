// Layer normalizations over rows of `n` contiguous elements, one block per row (grid-stride over
// the rows): LayerNormalization, RMSNormalization, SimplifiedLayerNormalization and the
// com.microsoft SkipLayerNormalization / SkipSimplifiedLayerNormalization.
//
// The normalized value is s = x (+ skip) (+ bias); with a skip or bias, s is rounded to T first
// (as onnxruntime's CUDA kernels keep it) and is the optional input_skip_bias_sum output. Half
// types accumulate in float32. The statistics are two-pass (the mean, then the mean square of
// s - mean); when `cache` is set the block keeps the row's s in shared memory (n values of the
// accumulation type) instead of recomputing it.
//   y = (s - mean) * inv_std * gamma (+ beta)        inv_std = 1 / sqrt(var + epsilon)
//   simplified: mean = 0 and var = mean(s^2)
#include "common.cuh"

template <typename T, typename A>
__device__ __forceinline__ A skip_sum(const T* __restrict__ x, const T* __restrict__ skip,
                                      const T* __restrict__ bias, i64 r, i64 skip_rows, i64 n,
                                      i64 j) {
  A v = to_acc<A>(x[r * n + j]);
  if (skip == nullptr && bias == nullptr) return v;
  if (skip != nullptr) v += to_acc<A>(skip[(r % skip_rows) * n + j]);
  if (bias != nullptr) v += to_acc<A>(bias[j]);
  return to_acc<A>(from_acc<T>(v));
}

template <typename T, typename V>
__global__ void norm_rows(const T* __restrict__ x, const T* __restrict__ skip, i64 skip_rows,
                          const T* __restrict__ bias, const V* __restrict__ gamma,
                          const V* __restrict__ beta, V* __restrict__ y, T* __restrict__ sum_out,
                          typename Num<T>::acc* __restrict__ mean_out,
                          typename Num<T>::acc* __restrict__ inv_out, i64 rows, i64 n,
                          double epsilon, int simplified, int cache) {
  typedef typename Num<T>::acc A;
  __shared__ A scratch[32];
  A* c = cache ? dynamic_shared<A>() : nullptr;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    A total = A(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      const A v = skip_sum<T, A>(x, skip, bias, r, skip_rows, n, j);
      if (c != nullptr) c[j] = v;
      if (sum_out != nullptr) sum_out[r * n + j] = from_acc<T>(v);
      total += simplified ? v * v : v;
    }
    total = block_sum(total, scratch);
    A mean = A(0), var;
    if (simplified) {
      var = total / A(n);
    } else {
      mean = total / A(n);
      A sq = A(0);
      for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
        const A d = (c != nullptr ? c[j] : skip_sum<T, A>(x, skip, bias, r, skip_rows, n, j)) - mean;
        sq += d * d;
      }
      var = block_sum(sq, scratch) / A(n);
    }
    const A inv = A(1) / ort_sqrt(var + A(epsilon));
    if (threadIdx.x == 0) {
      if (mean_out != nullptr) mean_out[r] = mean;
      if (inv_out != nullptr) inv_out[r] = inv;
    }
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      const A v = c != nullptr ? c[j] : skip_sum<T, A>(x, skip, bias, r, skip_rows, n, j);
      A o = (v - mean) * inv * to_acc<A>(gamma[j]);
      if (beta != nullptr) o += to_acc<A>(beta[j]);
      y[r * n + j] = from_acc<V>(o);
    }
    __syncthreads();  // the next row reuses the cache
  }
}
