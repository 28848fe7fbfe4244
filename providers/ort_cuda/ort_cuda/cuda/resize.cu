// Resize of up to three axes in one pass, one thread per output element (grid-stride).
//
// The host collapses the tensor to (d0, L1, d1, L2, d2, L3, d3): L1..L3 are the resized axes
// (input lengths in1..in3, output lengths out1..out3; an unused axis has length 1 and one tap) and
// d0..d3 the products of the axes between them. Each resized axis has a tap table computed on the
// host by ort_core.ops (ops.tap_table): output position j reads `taps` input positions
// idx[off + j * taps + k] with weights w[off + j * taps + k]; positions where outside[ooff + j] is
// set (tf_crop_and_resize outside the input; ooff < 0: nowhere) take the extrapolation value.
// One table array per kind holds the three axes' tables at their offsets.
#include "common.cuh"

__device__ __forceinline__ bool resize_outside(const unsigned char* __restrict__ outside,
                                               int ooff, i64 j) {
  return ooff >= 0 && outside[ooff + j] != 0;
}

// the position of output element e in the (c0, j1, c1, j2, c2, j3, c3) view of the output:
// j1..j3 index the resized axes, c0..c3 the products of the axes around them
struct ResizePos {
  i64 c0, j1, c1, j2, c2, j3, c3;
};

__device__ __forceinline__ ResizePos resize_pos(i64 e, i64 d1, i64 d2, i64 d3, int out1,
                                                int out2, int out3) {
  ResizePos p;
  i64 r = e;
  p.c3 = r % d3;
  r /= d3;
  p.j3 = r % out3;
  r /= out3;
  p.c2 = r % d2;
  r /= d2;
  p.j2 = r % out2;
  r /= out2;
  p.c1 = r % d1;
  r /= d1;
  p.j1 = r % out1;
  p.c0 = r / out1;
  return p;
}

// linear / cubic (and antialiased) filtering of floating types, weights in the accumulation type
template <typename T>
__global__ void resize_filter(const T* __restrict__ x, T* __restrict__ y, i64 total, i64 d1,
                              i64 d2, i64 d3, int in1, int out1, int taps1, int off1,
                              int ooff1, int in2, int out2, int taps2, int off2, int ooff2, int in3,
                              int out3, int taps3, int off3, int ooff3,
                              const int* __restrict__ idx,
                              const typename Num<T>::acc* __restrict__ w,
                              const unsigned char* __restrict__ outside, double extrapolation) {
  typedef typename Num<T>::acc A;
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const ResizePos p = resize_pos(e, d1, d2, d3, out1, out2, out3);
    const i64 c0 = p.c0, j1 = p.j1, c1 = p.c1, j2 = p.j2, c2 = p.c2, j3 = p.j3, c3 = p.c3;
    if (resize_outside(outside, ooff1, j1) || resize_outside(outside, ooff2, j2) ||
        resize_outside(outside, ooff3, j3)) {
      y[e] = from_acc<T>(A(extrapolation));
      continue;
    }
    A acc1 = A(0);
    for (int k1 = 0; k1 < taps1; ++k1) {
      const int t1 = off1 + (int)j1 * taps1 + k1;
      const A w1 = w[t1];
      if (w1 == A(0)) continue;
      const i64 b1 = ((c0 * in1 + idx[t1]) * d1 + c1) * in2;
      A acc2 = A(0);
      for (int k2 = 0; k2 < taps2; ++k2) {
        const int t2 = off2 + (int)j2 * taps2 + k2;
        const A w2 = w[t2];
        if (w2 == A(0)) continue;
        const i64 b2 = ((b1 + idx[t2]) * d2 + c2) * in3;
        A acc3 = A(0);
        for (int k3 = 0; k3 < taps3; ++k3) {
          const int t3 = off3 + (int)j3 * taps3 + k3;
          acc3 += w[t3] * Num<T>::load(x[(b2 + idx[t3]) * d3 + c3]);
        }
        acc2 += w2 * acc3;
      }
      acc1 += w1 * acc2;
    }
    y[e] = from_acc<T>(acc1);
  }
}

// nearest: one tap of weight 1 per axis, a bit copy of elements of S (any type of that size);
// `extrapolation` is the extrapolation value's bits in the element type
template <typename S>
__global__ void resize_nearest(const S* __restrict__ x, S* __restrict__ y, i64 total, i64 d1,
                               i64 d2, i64 d3, int in1, int out1, int off1, int ooff1,
                               int in2, int out2, int off2, int ooff2, int in3, int out3, int off3,
                               int ooff3, const int* __restrict__ idx,
                               const unsigned char* __restrict__ outside, S extrapolation) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total;
       e += (i64)blockDim.x * gridDim.x) {
    const ResizePos p = resize_pos(e, d1, d2, d3, out1, out2, out3);
    const i64 c0 = p.c0, j1 = p.j1, c1 = p.c1, j2 = p.j2, c2 = p.c2, j3 = p.j3, c3 = p.c3;
    if (resize_outside(outside, ooff1, j1) || resize_outside(outside, ooff2, j2) ||
        resize_outside(outside, ooff3, j3)) {
      y[e] = extrapolation;
      continue;
    }
    const i64 at =
        ((((((c0 * in1 + idx[off1 + j1]) * d1 + c1) * in2 + idx[off2 + j2]) * d2 + c2) * in3 +
          idx[off3 + j3]) *
             d3 +
         c3);
    y[e] = x[at];
  }
}
