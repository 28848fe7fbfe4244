// TopK: the k first elements of each segment of each row, in the order onnxruntime returns them
// (largest: descending values; smallest: ascending; equal values by increasing index; NaN ranks
// above every number, so first for largest and last for smallest).
//
// A row r = (o, i) of `n` elements lies at x[o * n * inner + j * inner + i]. The row is cut into
// segments of `seg` elements; one block sorts one segment in shared memory (a bitonic sort of
// (key, index) pairs padded to `pow2` >= seg, pow2 <= 2 * blockDim.x... any block size works: each
// thread handles pow2 / 2 / blockDim.x compare-exchanges per step) and writes its first `kk`
// (value, index) pairs to y[o * nseg * kk * inner + (s * kk + t) * inner + i]. The output is
// again rows of nseg * kk candidates in the same layout, so the host repeats the pass until one
// segment is left (each pass divides the row length by seg / kk >= 2).
//
// `xi` (null on the first pass) holds the original index of each candidate.
#include "common.cuh"

// the type the sort compares: float for the half types, the element type otherwise
template <typename T>
struct Key {
  typedef T type;
};
template <>
struct Key<__half> {
  typedef float type;
};
template <>
struct Key<__nv_bfloat16> {
  typedef float type;
};

// whether (a, ai) comes before (b, bi); index -1 marks padding, which comes last
template <typename K, bool LARGEST>
__device__ __forceinline__ bool ranks_before(K a, i64 ai, K b, i64 bi) {
  if (ai < 0) return false;
  if (bi < 0) return true;
  const bool an = a != a, bn = b != b;  // NaN (never for integers)
  if (an || bn) {
    if (an && bn) return ai < bi;
    return LARGEST ? an : bn;
  }
  if (a != b) return LARGEST ? a > b : a < b;
  return ai < bi;
}

template <typename T, bool LARGEST>
__global__ void topk_segments(const T* __restrict__ x, const i64* __restrict__ xi,
                              T* __restrict__ y, i64* __restrict__ yi, i64 rows, i64 n,
                              i64 inner, i64 seg, i64 nseg, int kk, int pow2) {
  typedef typename Key<T>::type K;
  K* keys = dynamic_shared<K>();
  i64* idx = reinterpret_cast<i64*>(keys + pow2);  // pow2 * sizeof(K) is a multiple of 8
  const int half = pow2 >> 1;
  for (i64 blk = blockIdx.x; blk < rows * nseg; blk += gridDim.x) {
    const i64 r = blk / nseg, s = blk % nseg;
    const i64 o = r / inner, i = r % inner;
    const i64 start = s * seg;
    const i64 len = ort_min(seg, n - start);
    for (int j = threadIdx.x; j < pow2; j += blockDim.x) {
      if (j < len) {
        const i64 at = (o * n + start + j) * inner + i;
        keys[j] = static_cast<K>(Num<T>::load(x[at]));
        idx[j] = xi != nullptr ? xi[at] : start + j;
      } else {
        idx[j] = -1;
      }
    }
    for (int size = 2; size <= pow2; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        __syncthreads();
        for (int t = threadIdx.x; t < half; t += blockDim.x) {
          const int lo = 2 * t - (t & (stride - 1)), hi = lo + stride;
          const bool up = (lo & size) == 0;
          const K klo = keys[lo], khi = keys[hi];
          const i64 ilo = idx[lo], ihi = idx[hi];
          const bool swap = up ? ranks_before<K, LARGEST>(khi, ihi, klo, ilo)
                               : ranks_before<K, LARGEST>(klo, ilo, khi, ihi);
          if (swap) {
            keys[lo] = khi;
            keys[hi] = klo;
            idx[lo] = ihi;
            idx[hi] = ilo;
          }
        }
      }
    }
    __syncthreads();
    const i64 kout = nseg * kk;
    for (int t = threadIdx.x; t < kk; t += blockDim.x) {
      const i64 at = (o * kout + s * kk + t) * inner + i;
      y[at] = Num<T>::store(static_cast<typename Num<T>::acc>(keys[t]));
      yi[at] = idx[t];
    }
    __syncthreads();
  }
}
