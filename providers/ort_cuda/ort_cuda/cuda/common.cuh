// Shared helpers of the ort_cuda CUDA C sources: integer types, the accumulation type of each
// element type (float32 for __half and __nv_bfloat16), loads and stores through it, infinities,
// bit casts, warp and block reductions, atomics by element size, and the block's dynamic
// shared memory.
//
// Kernels are written with grid-stride loops; their launch configuration is computed on the host
// (ort_cuda/kernels/raw.py). Block sizes are multiples of 32 (the reductions rely on whole warps).
#ifndef ORT_CUDA_COMMON_CUH
#define ORT_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_bf16.h>

typedef long long i64;
typedef unsigned long long u64;

// -- element types -------------------------------------------------------------------------------
// Num<T>::acc is the type T is computed in: float for the half types, T itself otherwise.
template <typename T>
struct Num {
  typedef T acc;
  static __device__ __forceinline__ acc load(T v) { return v; }
  static __device__ __forceinline__ T store(acc v) { return v; }
};

template <>
struct Num<__half> {
  typedef float acc;
  static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};

template <>
struct Num<__nv_bfloat16> {
  typedef float acc;
  static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

// value of type T (any element type) in accumulation type A
template <typename A, typename T>
__device__ __forceinline__ A to_acc(T v) {
  return static_cast<A>(Num<T>::load(v));
}

// an accumulated value stored as element type T
template <typename T, typename A>
__device__ __forceinline__ T from_acc(A v) {
  return Num<T>::store(static_cast<typename Num<T>::acc>(v));
}

// -- bits ----------------------------------------------------------------------------------------
template <typename U, typename T>
__device__ __forceinline__ U bit_cast(T v) {
  static_assert(sizeof(U) == sizeof(T), "bit_cast between types of different sizes");
  U u;
  memcpy(&u, &v, sizeof(U));
  return u;
}

// unsigned integer of each element size (bit copies and compare-and-swap loops)
template <int N>
struct Bits;
template <>
struct Bits<1> {
  typedef unsigned char type;
};
template <>
struct Bits<2> {
  typedef unsigned short type;
};
template <>
struct Bits<4> {
  typedef unsigned int type;
};
template <>
struct Bits<8> {
  typedef u64 type;
};

template <typename A>
__device__ __forceinline__ A pos_inf();
template <>
__device__ __forceinline__ float pos_inf<float>() {
  return __int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double pos_inf<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}

__device__ __forceinline__ float ort_exp(float v) { return expf(v); }
__device__ __forceinline__ double ort_exp(double v) { return exp(v); }
__device__ __forceinline__ float ort_log(float v) { return logf(v); }
__device__ __forceinline__ double ort_log(double v) { return log(v); }
__device__ __forceinline__ float ort_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double ort_sqrt(double v) { return sqrt(v); }

template <typename A>
__device__ __forceinline__ A ort_max(A a, A b) {
  return a > b ? a : b;
}
template <typename A>
__device__ __forceinline__ A ort_min(A a, A b) {
  return a < b ? a : b;
}

// -- reductions (all threads of the block call these; blockDim.x is a multiple of 32) -------------
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) v = ort_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The sum over the block, returned to every thread. `scratch` holds 32 values in shared memory;
// the first barrier lets consecutive calls share it.
template <typename A>
__device__ __forceinline__ A block_sum(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : A(0);
  return warp_sum(v);
}

// Online softmax statistics: the running maximum m and the sum s of exp(x - m). -inf values add
// nothing (a row of -inf keeps m = -inf, s = 0, and its outputs come out NaN as onnxruntime's);
// NaN propagates into s.
template <typename A>
struct MaxSum {
  A m, s;
};

template <typename A>
__device__ __forceinline__ void maxsum_add(MaxSum<A>& a, A v) {
  if (v > a.m) {
    a.s = a.s * ort_exp(a.m - v) + A(1);
    a.m = v;
  } else if (!(v == -pos_inf<A>())) {
    a.s += ort_exp(v - a.m);
  }
}

template <typename A>
__device__ __forceinline__ MaxSum<A> maxsum_merge(MaxSum<A> a, MaxSum<A> b) {
  MaxSum<A> r;
  r.m = ort_max(a.m, b.m);
  const A ninf = -pos_inf<A>();
  r.s = (a.m == ninf ? A(0) : a.s * ort_exp(a.m - r.m)) +
        (b.m == ninf ? A(0) : b.s * ort_exp(b.m - r.m));
  return r;
}

template <typename A>
__device__ __forceinline__ MaxSum<A> warp_maxsum(MaxSum<A> v) {
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<A> w;
    w.m = __shfl_xor_sync(0xffffffffu, v.m, o);
    w.s = __shfl_xor_sync(0xffffffffu, v.s, o);
    v = maxsum_merge(v, w);
  }
  return v;
}

template <typename A>
__device__ __forceinline__ MaxSum<A> block_maxsum(MaxSum<A> v, A* scratch /* 64 values */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_maxsum(v);
  __syncthreads();
  if (lane == 0) {
    scratch[warp] = v.m;
    scratch[32 + warp] = v.s;
  }
  __syncthreads();
  if (lane < warps) {
    v.m = scratch[lane];
    v.s = scratch[32 + lane];
  } else {
    v.m = -pos_inf<A>();
    v.s = A(0);
  }
  return warp_maxsum(v);
}

// -- atomics -------------------------------------------------------------------------------------
template <typename U>
__device__ __forceinline__ U atomic_cas_bits(U* p, U expected, U desired) {
  return atomicCAS(p, expected, desired);
}

// *p = f(*p, v) atomically, with a compare-and-swap loop on the element's bits (16-bit CAS needs
// sm_70, which every architecture the provider compiles for has).
template <typename T, typename F>
__device__ __forceinline__ void atomic_apply(T* p, T v, F f) {
  typedef typename Bits<sizeof(T)>::type U;
  U* q = reinterpret_cast<U*>(p);
  U old = *q, assumed;
  do {
    assumed = old;
    const T next = f(bit_cast<T>(assumed), v);
    old = atomic_cas_bits<U>(q, assumed, bit_cast<U>(next));
  } while (old != assumed);
}

// -- shared memory -------------------------------------------------------------------------------
// The block's dynamic shared memory (the launch's shared_mem bytes), 16-byte aligned.
#ifndef ORT_EXTERN_SHARED
#define ORT_EXTERN_SHARED extern __shared__
#endif
template <typename S>
__device__ __forceinline__ S* dynamic_shared() {
  ORT_EXTERN_SHARED __align__(16) unsigned char ort_smem[];
  return reinterpret_cast<S*>(ort_smem);
}

#endif  // ORT_CUDA_COMMON_CUH
