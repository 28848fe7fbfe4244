// Softmax and LogSoftmax along one axis, and the masked softmax of attention scores.
//
// Each row is read twice: once for its online statistics (running maximum and sum of exp(x - max),
// merged across threads with warp shuffles and 32 shared values), once to write
// exp(x - max) / sum, or x - max - log(sum) for LogSoftmax. Half types are computed in float32.
#include "common.cuh"

// Rows of `n` contiguous elements, one block per row (grid-stride over the rows).
template <typename T, bool LOG>
__global__ void softmax_rows(const T* __restrict__ x, T* __restrict__ y, i64 rows, i64 n) {
  typedef typename Num<T>::acc A;
  __shared__ A scratch[64];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    MaxSum<A> st;
    st.m = -pos_inf<A>();
    st.s = A(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) maxsum_add(st, Num<T>::load(xr[j]));
    st = block_maxsum(st, scratch);
    if (LOG) {
      const A shift = st.m + ort_log(st.s);
      for (i64 j = threadIdx.x; j < n; j += blockDim.x)
        yr[j] = Num<T>::store(Num<T>::load(xr[j]) - shift);
    } else {
      const A inv = A(1) / st.s;
      for (i64 j = threadIdx.x; j < n; j += blockDim.x)
        yr[j] = Num<T>::store(ort_exp(Num<T>::load(xr[j]) - st.m) * inv);
    }
  }
}

// Rows along an axis with `inner` > 1 elements after it, one thread per row: row (o, i) is
// x[o * n * inner + j * inner + i]; neighbouring threads read neighbouring elements.
template <typename T, bool LOG>
__global__ void softmax_strided(const T* __restrict__ x, T* __restrict__ y, i64 outer, i64 n,
                                i64 inner) {
  typedef typename Num<T>::acc A;
  const i64 rows = outer * inner;
  for (i64 r = blockIdx.x * (i64)blockDim.x + threadIdx.x; r < rows;
       r += (i64)blockDim.x * gridDim.x) {
    const i64 base = (r / inner) * n * inner + r % inner;
    MaxSum<A> st;
    st.m = -pos_inf<A>();
    st.s = A(0);
    for (i64 j = 0; j < n; ++j) maxsum_add(st, Num<T>::load(x[base + j * inner]));
    if (LOG) {
      const A shift = st.m + ort_log(st.s);
      for (i64 j = 0; j < n; ++j)
        y[base + j * inner] = Num<T>::store(Num<T>::load(x[base + j * inner]) - shift);
    } else {
      const A inv = A(1) / st.s;
      for (i64 j = 0; j < n; ++j)
        y[base + j * inner] = Num<T>::store(ort_exp(Num<T>::load(x[base + j * inner]) - st.m) * inv);
    }
  }
}

// Attention probabilities from the scores (B, N, S, T) of q k^T, one block per row (b, h, i):
//   v_j = scores * scale + bias[b, h, i, j] + (mask[b, i, j] == 0 ? filter : 0)
//         + (causal && j > past + i ? -inf : 0)
// then softmax over j. `bias` (null: none) is indexed b * bias_b + h * bias_h + i * t + j (a zero
// stride broadcasts); `mask` (null: none) is int32 (B, mask_rows, T) with mask_rows 1 or S.
// `probs` may be `scores` (each thread reads and writes only its own elements).
template <typename T>
__global__ void attention_softmax(const T* scores, T* probs, i64 rows,
                                  int heads, int s_len, int t_len, float scale,
                                  const T* __restrict__ bias, i64 bias_b, i64 bias_h,
                                  const int* __restrict__ mask, int mask_rows, int causal,
                                  int past, float filter) {
  typedef typename Num<T>::acc A;
  __shared__ A scratch[64];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const i64 i = r % s_len, h = (r / s_len) % heads, b = r / ((i64)s_len * heads);
    const T* row = scores + r * t_len;
    T* out = probs + r * t_len;
    const T* brow = bias != nullptr ? bias + b * bias_b + h * bias_h + i * t_len : nullptr;
    const int* mrow =
        mask != nullptr ? mask + (b * mask_rows + (mask_rows > 1 ? i : 0)) * t_len : nullptr;
    const i64 last = causal ? past + i : (i64)t_len - 1;  // the last key a query may see
    MaxSum<A> st;
    st.m = -pos_inf<A>();
    st.s = A(0);
    for (int j = threadIdx.x; j < t_len; j += blockDim.x) {
      A v = Num<T>::load(row[j]) * A(scale);
      if (brow != nullptr) v += Num<T>::load(brow[j]);
      if (mrow != nullptr && mrow[j] == 0) v += A(filter);
      if (j > last) v = -pos_inf<A>();
      maxsum_add(st, v);
    }
    st = block_maxsum(st, scratch);
    const A inv = A(1) / st.s;
    // the same arithmetic again, so that probs may be the scores themselves (in place)
    for (int j = threadIdx.x; j < t_len; j += blockDim.x) {
      A v = Num<T>::load(row[j]) * A(scale);
      if (brow != nullptr) v += Num<T>::load(brow[j]);
      if (mrow != nullptr && mrow[j] == 0) v += A(filter);
      if (j > last) v = -pos_inf<A>();
      out[j] = Num<T>::store(ort_exp(v - st.m) * inv);
    }
  }
}
