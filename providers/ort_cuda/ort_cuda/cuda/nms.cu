// NonMaxSuppression: the greedy selection of one (batch, class) per block (grid-stride over them).
//
// The host sorts each class's candidates (score above score_threshold) by descending score, equal
// scores by increasing box index: order[c * n_boxes + p] is the box of rank p, ncand[c] how many
// there are. The block walks the ranks: the first box still alive is selected (up to max_out), and
// every thread then marks the later boxes it overlaps with IoU above the threshold as suppressed
// (alive is a scratch byte per rank). IoU is computed in float32 as onnxruntime's
// SuppressByIOU does (boxes as [y1, x1, y2, x2] in any corner order, or [x_center, y_center,
// width, height] with center_point_box). Selected box indices go to sel[c * max_out + t] and
// their number to count[c].
#include "common.cuh"

struct Corners {
  float x0, x1, y0, y1;
};

__device__ __forceinline__ Corners box_corners(const float* __restrict__ b, int center) {
  Corners c;
  if (center) {
    const float hw = b[2] / 2, hh = b[3] / 2;
    c.x0 = b[0] - hw;
    c.x1 = b[0] + hw;
    c.y0 = b[1] - hh;
    c.y1 = b[1] + hh;
  } else {
    c.x0 = fminf(b[1], b[3]);
    c.x1 = fmaxf(b[1], b[3]);
    c.y0 = fminf(b[0], b[2]);
    c.y1 = fmaxf(b[0], b[2]);
  }
  return c;
}

__device__ __forceinline__ bool suppresses(const Corners& a, const Corners& b, float threshold) {
  const float ix0 = fmaxf(a.x0, b.x0), ix1 = fminf(a.x1, b.x1);
  if (ix1 <= ix0) return false;
  const float iy0 = fmaxf(a.y0, b.y0), iy1 = fminf(a.y1, b.y1);
  if (iy1 <= iy0) return false;
  const float inter = (ix1 - ix0) * (iy1 - iy0);
  if (inter <= 0.0f) return false;
  const float area_a = (a.x1 - a.x0) * (a.y1 - a.y0);
  const float area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
  const float uni = area_a + area_b - inter;
  if (area_a <= 0.0f || area_b <= 0.0f || uni <= 0.0f) return false;
  return inter / uni > threshold;
}

__global__ void nms_select(const float* __restrict__ boxes, const i64* __restrict__ order,
                           const int* __restrict__ ncand, unsigned char* __restrict__ alive,
                           i64* __restrict__ sel, int* __restrict__ count, i64 classes_total,
                           int classes, int n_boxes, int max_out, float iou_threshold,
                           int center) {
  __shared__ int next;
  for (i64 c = blockIdx.x; c < classes_total; c += gridDim.x) {
    const float* bx = boxes + (c / classes) * (i64)n_boxes * 4;
    const i64* ord = order + c * n_boxes;
    unsigned char* live = alive + c * n_boxes;
    const int m = ncand[c];
    for (int p = threadIdx.x; p < m; p += blockDim.x) live[p] = 1;
    int p = 0, selected = 0;
    while (true) {
      __syncthreads();  // the marks of the previous round (and the initial ones) are written
      if (threadIdx.x == 0) {
        while (p < m && !live[p]) ++p;
        next = p;
      }
      __syncthreads();
      p = next;
      if (p >= m || selected >= max_out) break;
      const i64 box = ord[p];
      if (threadIdx.x == 0) sel[c * max_out + selected] = box;
      ++selected;
      const Corners a = box_corners(bx + box * 4, center);
      for (int q = p + 1 + threadIdx.x; q < m; q += blockDim.x) {
        if (live[q] && suppresses(a, box_corners(bx + ord[q] * 4, center), iou_threshold))
          live[q] = 0;
      }
      ++p;
    }
    if (threadIdx.x == 0) count[c] = selected;
    __syncthreads();  // `next` is reused by the next class
  }
}
