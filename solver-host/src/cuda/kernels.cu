// Device side of `solver_host::cuda`: the generic vector operations of
// solver_core::broyden::ops (copy, scale, x + alpha y, the low-rank product, fill, dot,
// norm, finiteness) over a batch of samples, and the activation of the DEQ layer. They
// know nothing of Broyden's method: its formulas are solver-core's. Compiled at run
// time by NVRTC with --fmad=false, so that every elementwise operation rounds exactly
// as the CPU code does (a product, then a sum); only the reductions (summed in double,
// in a fixed order) and tanhf differ from the CPU by rounding.
//
// Memory (row-major, float unless noted; B samples, dimension d, M pairs):
//   work     [5][B][d]   the work vectors X, G, P, XN, GN of every sample (vector-major:
//                        one vector of consecutive samples is one [rows x h] matrix)
//   u, v     [B][M][d]   the stored pairs
//   z        [B][d]      the best iterates
//   c        [B][d]      the layer's injection U x + b, per token row
//   coef     [B][M]      double: the coefficients b_i . x of a low-rank product
//   result   [B]         double: the sum a reply is made of
//   partial  [list][nq][gridDim.x]  double: per-block partial sums
//
// Every kernel but `reduce` runs over a list of samples: `list` holds one Entry per
// sample, blockIdx.y picks the entry and blockIdx.x a contiguous block of that
// sample's d elements (span). Elementwise kernels read each element's inputs before
// writing its output, in the same thread, so an output may be one of the inputs.
// Reductions are two-stage and deterministic: each block sums its elements in a fixed
// order (a per-thread strided sum, then a tree in shared memory) into `partial`, and
// `reduce` sums the blocks of each quantity the same way. No atomics: the same launch
// gives the same bits every time.

#define THREADS 256
#define ROWS 8

typedef long long i64;

// One sample's operation. Mirrors `Entry` in plan.rs (eight 4-byte fields); each
// kernel says which it reads. Vectors are codes (see vptr).
struct Entry {
    int sample;
    int out;
    int x;
    int y;
    int end;      // pairs: the rows i < end ...
    int skip;     // ... with i != skip (-1: none)
    float alpha;  // the factor, or Fill's value
    int factors;  // LowRank: a in bit 0, b in bit 1 (0: U, 1: V)
};

// The buffers of the batch. Mirrors `Mem` in backend.rs.
struct Mem {
    float* work;
    float* u;
    float* v;
    float* z;
    i64 d;
    int nb;  // B
    int m;   // M
};

// Sample s's vector `code` = row * 4 + buffer: buffer 0 work vector `row`, 1 row of U,
// 2 row of V, 3 the best iterate z. Rows were checked on the host.
__device__ __forceinline__ float* vptr(const Mem& mem, int code, int s) {
    i64 row = code >> 2;
    switch (code & 3) {
        case 0:
            return mem.work + (row * mem.nb + s) * mem.d;
        case 1:
            return mem.u + ((i64)s * mem.m + row) * mem.d;
        case 2:
            return mem.v + ((i64)s * mem.m + row) * mem.d;
        default:
            return mem.z + (i64)s * mem.d;
    }
}

// The first row of sample s's factor U (f == 0) or V.
__device__ __forceinline__ float* factor(const Mem& mem, int f, int s) {
    return (f ? mem.v : mem.u) + (i64)s * mem.m * mem.d;
}

__device__ __forceinline__ bool in_pairs(int i, int end, int skip) {
    return i < end && i != skip;
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

// Evaluate, second half (after the product out = x W^T): out <- act(out + c).
// Entry: out. relu != 0: max(0, .) (NaN becomes 0, as f32::max does), else tanhf.
extern "C" __global__ void activation(const Entry* list, Mem mem, const float* c, int relu) {
    Entry e = list[blockIdx.y];
    float* out = vptr(mem, e.out, e.sample);
    const float* cs = c + (i64)e.sample * mem.d;
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float o = out[j] + cs[j];
        out[j] = relu ? fmaxf(o, 0.0f) : tanhf(o);
    }
}

// Copy: out <- x. Entry: out, x.
extern "C" __global__ void op_copy(const Entry* list, Mem mem) {
    Entry e = list[blockIdx.y];
    float* out = vptr(mem, e.out, e.sample);
    const float* x = vptr(mem, e.x, e.sample);
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        out[j] = x[j];
    }
}

// Scale: out <- alpha x. Entry: out, x, alpha.
extern "C" __global__ void op_scale(const Entry* list, Mem mem) {
    Entry e = list[blockIdx.y];
    float* out = vptr(mem, e.out, e.sample);
    const float* x = vptr(mem, e.x, e.sample);
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        out[j] = e.alpha * x[j];
    }
}

// Combine: out <- x + alpha y (the product, then the sum). Entry: out, x, y, alpha.
extern "C" __global__ void op_combine(const Entry* list, Mem mem) {
    Entry e = list[blockIdx.y];
    float* out = vptr(mem, e.out, e.sample);
    const float* x = vptr(mem, e.x, e.sample);
    const float* y = vptr(mem, e.y, e.sample);
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float xv = x[j];
        float yv = y[j];
        out[j] = xv + e.alpha * yv;
    }
}

// Fill: out <- alpha everywhere. Entry: out, alpha.
extern "C" __global__ void op_fill(const Entry* list, Mem mem) {
    Entry e = list[blockIdx.y];
    float* out = vptr(mem, e.out, e.sample);
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        out[j] = e.alpha;
    }
}

// LowRank, first half: the partial coefficients b_i . x for the rows i < nq (0 for the
// rows not in the pairs set), as nq quantities. Entry: x, end, skip, factors (b). The
// rows are taken ROWS at a time, each group in one pass over x.
extern "C" __global__ void op_low_rank_coeffs(const Entry* list, Mem mem, int nq, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* x = vptr(mem, e.x, e.sample);
    const float* rows = factor(mem, (e.factors >> 1) & 1, e.sample);
    i64 d = mem.d;
    i64 lo, hi;
    span(d, &lo, &hi);
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
                if (in_pairs(r0 + r, e.end, e.skip)) {
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

// LowRank, second half: out <- out + sum_i (alpha c_i) a_i over the pairs, row by row
// in order (c = coef, rounded to float first, as the CPU's f32 dot products are).
// Entry: out, end, skip, alpha, factors (a). `out` is not among the rows read (checked
// on the host).
extern "C" __global__ void op_low_rank_apply(const Entry* list, Mem mem, const double* coef) {
    Entry e = list[blockIdx.y];
    float* out = vptr(mem, e.out, e.sample);
    const float* rows = factor(mem, e.factors & 1, e.sample);
    const double* cs = coef + (i64)e.sample * mem.m;
    i64 d = mem.d;
    i64 lo, hi;
    span(d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        float t = out[j];
        for (int i = 0; i < e.end; ++i) {
            if (i != e.skip) {
                float k = e.alpha * (float)cs[i];
                t = t + k * rows[(i64)i * d + j];
            }
        }
        out[j] = t;
    }
}

// Dot: partial x . y. Entry: x, y.
extern "C" __global__ void op_dot(const Entry* list, Mem mem, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* x = vptr(mem, e.x, e.sample);
    const float* y = vptr(mem, e.y, e.sample);
    double acc = 0.0;
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        acc += (double)x[j] * (double)y[j];
    }
    put(partial, 1, 0, block_sum(acc, sh));
}

// Norm: partial |x|^2 (in double: no overflow at any f32 scale). Entry: x.
extern "C" __global__ void op_norm(const Entry* list, Mem mem, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* x = vptr(mem, e.x, e.sample);
    double acc = 0.0;
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        double xv = (double)x[j];
        acc += xv * xv;
    }
    put(partial, 1, 0, block_sum(acc, sh));
}

// AllFinite: the partial count of non-finite entries of x. Entry: x.
extern "C" __global__ void op_all_finite(const Entry* list, Mem mem, double* partial) {
    __shared__ double sh[THREADS];
    Entry e = list[blockIdx.y];
    const float* x = vptr(mem, e.x, e.sample);
    double bad = 0.0;
    i64 lo, hi;
    span(mem.d, &lo, &hi);
    for (i64 j = lo + threadIdx.x; j < hi; j += THREADS) {
        bad += isfinite(x[j]) ? 0.0 : 1.0;
    }
    put(partial, 1, 0, block_sum(bad, sh));
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
