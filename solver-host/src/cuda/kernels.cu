// Device side of `solver_host::cuda`: the vector operations of a batch of Broyden
// solves (solver_core::broyden::ops) and the activation of the DEQ layer. Compiled at
// run time by NVRTC with --fmad=false, so that every elementwise operation rounds
// exactly as the CPU code does (a product, then a sum); only the reductions (summed in
// double, in a fixed order) and tanhf differ from the CPU by rounding.
//
// Memory (row-major, float unless noted; B samples, dimension d, M pairs):
//   work     [5][B][d]   the work vectors X, G, P, XN, GN of every sample (vector-major:
//                        one vector of consecutive samples is one [rows x h] matrix)
//   u, v     [B][M][d]   the stored pairs
//   z        [B][d]      the best iterates
//   c        [B][d]      the layer's injection U x + b, per token row
//   coef     [B][M]      double: the coefficients of a low-rank product
//   result   [B][4]      double: the sums a reply is made of
//   partial  [list][nq][gridDim.x]  double: per-block partial sums
//
// Every kernel but `reduce` runs over a list of samples: `list` holds one Entry per
// sample, blockIdx.y picks the entry and blockIdx.x a contiguous block of that
// sample's d elements (span). Reductions are two-stage and deterministic: each block
// sums its elements in a fixed order (a per-thread strided sum, then a tree in shared
// memory) into `partial`, and `reduce` sums the blocks of each quantity the same way.
// No atomics: the same launch gives the same bits every time.

#define THREADS 256
#define ROWS 8

#define VX 0
#define VG 1
#define VP 2
#define VXN 3
#define VGN 4

typedef long long i64;

// One sample's operation. Mirrors `Entry` in plan.rs (eight 4-byte fields); the
// meaning of a, b, c depends on the kernel (see each).
struct Entry {
    int sample;
    int a;
    int b;
    int c;
    int end;   // pairs: the rows i < end ...
    int skip;  // ... with i != skip (-1: none)
    float alpha;
    float inv;
};

__device__ __forceinline__ float* vec(float* work, int v, int s, int nb, i64 d) {
    return work + ((i64)v * nb + s) * d;
}

// The first row of sample s's pairs (U or V).
__device__ __forceinline__ float* pairs_of(float* m, int s, int mm, i64 d) {
    return m + (i64)s * mm * d;
}

__device__ __forceinline__ bool in_pairs(int i, int end, int skip) {
    return i < end && i != skip;
}

__device__ __forceinline__ double bad(float x) {
    return isfinite(x) ? 0.0 : 1.0;
}

__device__ __forceinline__ double sq(float x) {
    return (double)x * (double)x;
}

// This block's elements [lo, hi) of a sample.
__device__ __forceinline__ void span(i64 d, i64* lo, i64* hi) {
    i64 chunk = (d + gridDim.x - 1) / gridDim.x;
    i64 start = (i64)blockIdx.x * chunk;
    i64 stop = start + chunk;
    *lo = start;
    *hi = stop < d ? stop : d;
}

// Sum of v over the block, in a fixed order; every thread gets it. Needs blockDim.x ==
// THREADS (a power of two) and every thread of the block to call it.
__device__ double block_sum(double v, double* sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            sh[threadIdx.x] += sh[threadIdx.x + s];
        }
        __syncthreads();
    }
    double total = sh[0];
    __syncthreads();
    return total;
}

// Stores this block's partial sum of quantity q (of nq) for its list entry.
__device__ __forceinline__ void put(double* partial, int nq, int q, double v) {
    if (threadIdx.x == 0) {
        partial[((i64)blockIdx.y * nq + q) * gridDim.x + blockIdx.x] = v;
    }
}

// Partial dot products rows_i . x over this block's elements, for the rows i < nq
// (0 for the rows not in the pairs set), into partial quantities 0 .. nq - 1. The rows
// are taken ROWS at a time, each group in one pass over x.
__device__ void row_dots(const float* rows, const float* x, i64 d, i64 lo, i64 hi, int end, int skip,
                         int nq, double* partial, double* sh) {
    for (int r0 = 0; r0 < nq; r0 += ROWS) {
        double acc[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            acc[r] = 0.0;
        }
        for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
            double xv = (double)x[j];
#pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                if (in_pairs(r0 + r, end, skip)) {
                    acc[r] += (double)rows[(i64)(r0 + r) * d + j] * xv;
                }
            }
        }
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            if (r0 + r < nq) {
                put(partial, nq, r0 + r, block_sum(acc[r], sh));
            }
        }
    }
}

// Evaluate, second half (after the product out = point W^T): out <- act(out + c).
// Entry: a = out. relu != 0: max(0, .) (NaN becomes 0, as f32::max does), else tanhf.
extern "C" __global__ void activation(const Entry* list, float* work, const float* c, int nb, i64 d, int relu) {
    Entry e = list[blockIdx.y];
    float* out = vec(work, e.a, e.sample, nb, d);
    const float* cs = c + (i64)e.sample * d;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float o = out[j] + cs[j];
        out[j] = relu ? fmaxf(o, 0.0f) : tanhf(o);
    }
}

// Residual. Entry: a = x, b = g, c = root. Fixed point: scale = |g|^2, g <- g - x,
// abs = |g|^2. Root: abs = |g|^2, scale = |x|^2. Partials: 0 scale, 1 abs, 2 the count
// of non-finite entries of x and (the new) g.
extern "C" __global__ void residual(const Entry* list, float* work, int nb, i64 d, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* x = vec(work, e.a, e.sample, nb, d);
    float* g = vec(work, e.b, e.sample, nb, d);
    double scale = 0.0, abs = 0.0, nbad = 0.0;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float xv = x[j];
        float gv = g[j];
        if (e.c) {
            abs += sq(gv);
            scale += sq(xv);
            nbad += bad(xv) + bad(gv);
        } else {
            scale += sq(gv);
            float r = gv - xv;
            g[j] = r;
            abs += sq(r);
            nbad += bad(xv) + bad(r);
        }
    }
    put(partial, 3, 0, block_sum(scale, sh));
    put(partial, 3, 1, block_sum(abs, sh));
    put(partial, 3, 2, block_sum(nbad, sh));
}

// KeepBest: z <- work[a].
extern "C" __global__ void keep_best(const Entry* list, float* work, float* z, int nb, i64 d) {
    Entry e = list[blockIdx.y];
    const float* from = vec(work, e.a, e.sample, nb, d);
    float* zs = z + (i64)e.sample * d;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        zs[j] = from[j];
    }
}

// Trial. Entry: c = reset, alpha. If reset, p <- g; then xn <- x + alpha p.
extern "C" __global__ void trial(const Entry* list, float* work, int nb, i64 d) {
    Entry e = list[blockIdx.y];
    const float* x = vec(work, VX, e.sample, nb, d);
    const float* g = vec(work, VG, e.sample, nb, d);
    float* p = vec(work, VP, e.sample, nb, d);
    float* xn = vec(work, VXN, e.sample, nb, d);
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float pv;
        if (e.c) {
            pv = g[j];
            p[j] = pv;
        } else {
            pv = p[j];
        }
        xn[j] = x[j] + e.alpha * pv;
    }
}

// Accept, first half. Entry: end, skip. p <- xn - x, g <- gn - g, x <- xn; then the
// partial coefficients u_i . p (the new p) for the pairs, as nq quantities.
extern "C" __global__ void accept_coeffs(const Entry* list, float* work, const float* u, int nb, i64 d,
                                         int m, int nq, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    float* x = vec(work, VX, e.sample, nb, d);
    float* g = vec(work, VG, e.sample, nb, d);
    float* p = vec(work, VP, e.sample, nb, d);
    const float* xn = vec(work, VXN, e.sample, nb, d);
    const float* gn = vec(work, VGN, e.sample, nb, d);
    i64 lo, hi;
    span(d, &lo, &hi);
    // Each thread reads back in row_dots exactly the elements it writes here.
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float xnv = xn[j];
        p[j] = xnv - x[j];
        g[j] = gn[j] - g[j];
        x[j] = xnv;
    }
    row_dots(u + (i64)e.sample * m * d, p, d, lo, hi, e.end, e.skip, nq, partial, sh);
}

// Partial coefficients rows_i . work[xv] for the pairs (end, skip) of `rows` (V . g
// for NewU and Step), as nq quantities.
extern "C" __global__ void coeffs(const Entry* list, float* work, const float* rows, int xv, int nb, i64 d,
                                  int m, int nq, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* x = vec(work, xv, e.sample, nb, d);
    i64 lo, hi;
    span(d, &lo, &hi);
    row_dots(rows + (i64)e.sample * m * d, x, d, lo, hi, e.end, e.skip, nq, partial, sh);
}

// Accept, second half. Entry: end, skip. xn <- -p + sum_i v_i c_i over the pairs
// (c = coef), then partials 0 xn.g, 1 |xn|^2, 2 |g|^2.
extern "C" __global__ void accept_apply(const Entry* list, float* work, float* v, const double* coef, int nb,
                                        i64 d, int m, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* g = vec(work, VG, e.sample, nb, d);
    const float* p = vec(work, VP, e.sample, nb, d);
    float* xn = vec(work, VXN, e.sample, nb, d);
    const float* vs = pairs_of(v, e.sample, m, d);
    const double* cs = coef + (i64)e.sample * m;
    double vg = 0.0, vv = 0.0, gg = 0.0;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float t = -p[j];
        for (int i = 0; i < e.end; ++i) {
            if (i != e.skip) {
                t = t + (float)cs[i] * vs[(i64)i * d + j];
            }
        }
        xn[j] = t;
        float gv = g[j];
        vg += (double)t * (double)gv;
        vv += sq(t);
        gg += sq(gv);
    }
    put(partial, 3, 0, block_sum(vg, sh));
    put(partial, 3, 1, block_sum(vv, sh));
    put(partial, 3, 2, block_sum(gg, sh));
}

// NewU, second half. Entry: a = slot, end, skip, inv. u_slot <- (p + g - sum_i u_i c_i)
// inv over the pairs (never containing slot); partial 0: its non-finite entries.
extern "C" __global__ void newu_apply(const Entry* list, float* work, float* u, const double* coef, int nb,
                                      i64 d, int m, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* g = vec(work, VG, e.sample, nb, d);
    const float* p = vec(work, VP, e.sample, nb, d);
    float* us = pairs_of(u, e.sample, m, d);
    float* dst = us + (i64)e.a * d;
    const double* cs = coef + (i64)e.sample * m;
    double nbad = 0.0;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float t = p[j] + g[j];
        for (int i = 0; i < e.end; ++i) {
            if (i != e.skip && i != e.a) {
                t = t + (-(float)cs[i]) * us[(i64)i * d + j];
            }
        }
        t = t * e.inv;
        dst[j] = t;
        nbad += bad(t);
    }
    put(partial, 1, 0, block_sum(nbad, sh));
}

// Finish. Entry: a = what (0 nothing, 1 keep: v_slot <- xn, 2 zero: u_slot <- 0 and
// v_slot <- 0), b = slot; then g <- gn.
extern "C" __global__ void finish(const Entry* list, float* work, float* u, float* v, int nb, i64 d, int m) {
    Entry e = list[blockIdx.y];
    float* g = vec(work, VG, e.sample, nb, d);
    const float* gn = vec(work, VGN, e.sample, nb, d);
    const float* xn = vec(work, VXN, e.sample, nb, d);
    float* us = pairs_of(u, e.sample, m, d) + (i64)e.b * d;
    float* vs = pairs_of(v, e.sample, m, d) + (i64)e.b * d;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        if (e.a == 1) {
            vs[j] = xn[j];
        } else if (e.a == 2) {
            us[j] = 0.0f;
            vs[j] = 0.0f;
        }
        g[j] = gn[j];
    }
}

// Step, second half. Entry: end = count. p <- g - sum_{i < count} u_i c_i; partial 0:
// the non-finite entries of p.
extern "C" __global__ void step_apply(const Entry* list, float* work, const float* u, const double* coef, int nb,
                                      i64 d, int m, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* g = vec(work, VG, e.sample, nb, d);
    float* p = vec(work, VP, e.sample, nb, d);
    const float* us = u + (i64)e.sample * m * d;
    const double* cs = coef + (i64)e.sample * m;
    double nbad = 0.0;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float t = g[j];
        for (int i = 0; i < e.end; ++i) {
            t = t + (-(float)cs[i]) * us[(i64)i * d + j];
        }
        p[j] = t;
        nbad += bad(t);
    }
    put(partial, 1, 0, block_sum(nbad, sh));
}

// Second stage of every reduction: grid (nq, list length). Sums the nblocks partials of
// quantity blockIdx.x of entry blockIdx.y, in a fixed order, into
// out[sample * stride + quantity].
extern "C" __global__ void reduce(const Entry* list, const double* partial, int nblocks, int nq, double* out,
                                  int stride) {
    __shared__ double sh[THREADS];
    const double* src = partial + ((i64)blockIdx.y * nq + blockIdx.x) * nblocks;
    double s = 0.0;
    for (int k = threadIdx.x; k < nblocks; k += THREADS) {
        s += src[k];
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) {
        out[(i64)list[blockIdx.y].sample * stride + blockIdx.x] = s;
    }
}
