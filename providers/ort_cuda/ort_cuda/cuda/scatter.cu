// GatherND, ScatterND and ScatterElements, one thread per element of the output (GatherND) or of
// the updates (the scatters), grid-stride.
//
// Index tensors are int64 (the host widens int32). A negative index counts from the end of its
// axis; an index still outside its axis is not followed: the thread sets *err = 1 and skips the
// element, and the host raises the error. Copies (GatherND, reduction "none") move the bits of an
// element type of size sizeof(S); reductions ("add", "mul", "max", "min": op 1 to 4) are atomic
// (atomicAdd where CUDA has it for the type, else a compare-and-swap loop on the bits) and
// compute the half types in float32.
#include "common.cuh"

// The element offset addressed by index tuple `r` (k values at idx[r * k]), with meta[q] the
// length and meta[k + q] the element stride of addressed axis q; -1 when an index is out of range.
__device__ __forceinline__ i64 nd_offset(const i64* __restrict__ idx, i64 r, int k,
                                         const i64* __restrict__ meta, int* __restrict__ err) {
  i64 off = 0;
  for (int q = 0; q < k; ++q) {
    i64 v = idx[r * k + q];
    const i64 d = meta[q];
    if (v < 0) v += d;
    if (v < 0 || v >= d) {
      *err = 1;
      return -1;
    }
    off += v * meta[k + q];
  }
  return off;
}

// out[e] for e = (row r, element s of the slice): rows of each batch are rows_per_batch index
// tuples; batch b starts at b * batch_stride in data.
template <typename S>
__global__ void gather_nd(const S* __restrict__ data, const i64* __restrict__ idx,
                          S* __restrict__ out, i64 total, i64 slice, i64 rows_per_batch,
                          i64 batch_stride, int k, const i64* __restrict__ meta,
                          int* __restrict__ err) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const i64 r = e / slice, s = e % slice;
    const i64 off = nd_offset(idx, r, k, meta, err);
    out[e] = off >= 0 ? data[(r / rows_per_batch) * batch_stride + off + s] : S(0);
  }
}

// -- reductions ----------------------------------------------------------------------------------
template <typename T>
struct Reduce {
  int op;
  __device__ __forceinline__ T operator()(T a, T b) const {
    typedef typename Num<T>::acc A;
    const A x = Num<T>::load(a), y = Num<T>::load(b);
    A r;
    switch (op) {
      case 1: r = x + y; break;
      case 2: r = x * y; break;
      case 3: r = ort_max(x, y); break;
      default: r = ort_min(x, y); break;
    }
    return Num<T>::store(r);
  }
};

template <typename T>
__device__ __forceinline__ void atomic_reduce(T* p, T v, int op) {
  atomic_apply(p, v, Reduce<T>{op});
}
template <>
__device__ __forceinline__ void atomic_reduce<float>(float* p, float v, int op) {
  if (op == 1)
    atomicAdd(p, v);
  else
    atomic_apply(p, v, Reduce<float>{op});
}
template <>
__device__ __forceinline__ void atomic_reduce<double>(double* p, double v, int op) {
  if (op == 1)
    atomicAdd(p, v);
  else
    atomic_apply(p, v, Reduce<double>{op});
}
template <>
__device__ __forceinline__ void atomic_reduce<int>(int* p, int v, int op) {
  if (op == 1)
    atomicAdd(p, v);
  else if (op == 3)
    atomicMax(p, v);
  else if (op == 4)
    atomicMin(p, v);
  else
    atomic_apply(p, v, Reduce<int>{op});
}
template <>
__device__ __forceinline__ void atomic_reduce<i64>(i64* p, i64 v, int op) {
  if (op == 1)
    atomicAdd(reinterpret_cast<u64*>(p), static_cast<u64>(v));  // two's complement
  else
    atomic_apply(p, v, Reduce<i64>{op});
}

// -- ScatterND -----------------------------------------------------------------------------------
// out (a copy of data) at the offset of index tuple r, plus s, from updates[e] (e = r * slice + s)
template <typename S>
__global__ void scatter_nd_copy(S* __restrict__ out, const i64* __restrict__ idx,
                                const S* __restrict__ upd, i64 total, i64 slice, int k,
                                const i64* __restrict__ meta, int* __restrict__ err) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const i64 off = nd_offset(idx, e / slice, k, meta, err);
    if (off >= 0) out[off + e % slice] = upd[e];
  }
}

template <typename T>
__global__ void scatter_nd_reduce(T* out, const i64* __restrict__ idx, const T* __restrict__ upd,
                                  i64 total, i64 slice, int k, const i64* __restrict__ meta,
                                  int op, int* __restrict__ err) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const i64 off = nd_offset(idx, e / slice, k, meta, err);
    if (off >= 0) atomic_reduce(out + off + e % slice, upd[e], op);
  }
}

// -- ScatterElements -----------------------------------------------------------------------------
// The element offset in data of update e: its coordinates in the indices' shape (meta[0..rank)),
// with the coordinate on `axis` replaced by the index; data's element strides are
// meta[rank..2 rank). -1 when the index is out of range.
__device__ __forceinline__ i64 elements_offset(const i64* __restrict__ idx, i64 e, int rank,
                                               int axis, i64 axis_dim,
                                               const i64* __restrict__ meta,
                                               int* __restrict__ err) {
  i64 off = 0, rest = e;
  for (int q = rank - 1; q >= 0; --q) {
    const i64 c = rest % meta[q];
    rest /= meta[q];
    if (q == axis) {
      i64 v = idx[e];
      if (v < 0) v += axis_dim;
      if (v < 0 || v >= axis_dim) {
        *err = 1;
        return -1;
      }
      off += v * meta[rank + q];
    } else {
      off += c * meta[rank + q];
    }
  }
  return off;
}

template <typename S>
__global__ void scatter_elements_copy(S* __restrict__ out, const i64* __restrict__ idx,
                                      const S* __restrict__ upd, i64 total, int rank, int axis,
                                      i64 axis_dim, const i64* __restrict__ meta,
                                      int* __restrict__ err) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const i64 off = elements_offset(idx, e, rank, axis, axis_dim, meta, err);
    if (off >= 0) out[off] = upd[e];
  }
}

template <typename T>
__global__ void scatter_elements_reduce(T* out, const i64* __restrict__ idx,
                                        const T* __restrict__ upd, i64 total, int rank, int axis,
                                        i64 axis_dim, const i64* __restrict__ meta, int op,
                                        int* __restrict__ err) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const i64 off = elements_offset(idx, e, rank, axis, axis_dim, meta, err);
    if (off >= 0) atomic_reduce(out + off, upd[e], op);
  }
}
