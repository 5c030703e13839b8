// The convolution and element-wise kernels of src/layers/cuda.rs, compiled by NVRTC at first
// use on a GPU, and on the CPU by the tests in tests/cuda_on_cpu/.
struct Geo { int n, c, h, w, kh, kw, s, pt, pl, oh, ow, o; };

// cols[n][k][p], k = (c, ky, kx), p = (oy, ox): one (K x P) matrix per image; image n is
// blockIdx.y (32-bit index maths: 64-bit divisions cost more than the copy itself).
extern "C" __global__ void im2col(float* cols, const float* x, Geo g) {
    int K = g.c * g.kh * g.kw, P = g.oh * g.ow, total = K * P;
    const float* xn = x + (long)blockIdx.y * g.c * g.h * g.w;
    float* cn = cols + (long)blockIdx.y * total;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int p = i % P, k = i / P;
        int ox = p % g.ow, oy = p / g.ow;
        int kx = k % g.kw, t = k / g.kw, ky = t % g.kh, c = t / g.kh;
        int iy = oy * g.s - g.pt + ky, ix = ox * g.s - g.pl + kx;
        cn[i] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) ? xn[(c * g.h + iy) * g.w + ix] : 0.0f;
    }
}

// dx += col2im(dcols), gathered per input pixel (a fixed order, no atomics); image n is
// blockIdx.y.
extern "C" __global__ void col2im_add(float* dx, const float* dcols, Geo g) {
    int P = g.oh * g.ow, total = g.c * g.h * g.w;
    const float* dn = dcols + (long)blockIdx.y * g.c * g.kh * g.kw * P;
    float* xn = dx + (long)blockIdx.y * total;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ix = i % g.w, t = i / g.w, iy = t % g.h, c = t / g.h;
        float acc = 0.0f;
        for (int ky = 0; ky < g.kh; ky++) {
            int ty = iy + g.pt - ky;
            if (ty < 0 || ty % g.s != 0) continue;
            int oy = ty / g.s;
            if (oy >= g.oh) continue;
            for (int kx = 0; kx < g.kw; kx++) {
                int tx = ix + g.pl - kx;
                if (tx < 0 || tx % g.s != 0) continue;
                int ox = tx / g.s;
                if (ox >= g.ow) continue;
                acc += dn[((c * g.kh + ky) * g.kw + kx) * P + oy * g.ow + ox];
            }
        }
        xn[i] += acc;
    }
}

// Direct convolution for few output channels (no im2col): block (row pair, o, n) of 32 x 8
// threads, 32 output columns at a time, each of the 8 thread rows summing every 8th input
// channel for 2 output rows (each input value loaded once for both); the 8 partial sums are
// then added in a fixed order. The output channel's weights sit in shared memory when they
// fit (`wsm` floats of dynamic shared memory).
#define DROWS 2
extern "C" __global__ void conv_direct(float* y, const float* x, const float* w, const float* b,
                                       int has_b, int wsm, Geo g) {
    __shared__ float part[8][DROWS][33];
    extern __shared__ float sw[];
    int oy0 = blockIdx.x * DROWS, o = blockIdx.y, n = blockIdx.z;
    int lane = threadIdx.x, grp = threadIdx.y, tid = grp * 32 + lane;
    int wlen = g.c * g.kh * g.kw;
    const float* xn = x + (long)n * g.c * g.h * g.w;
    const float* wo = w + (long)o * wlen;
    if (wsm) {
        for (int i = tid; i < wlen; i += 256) sw[i] = wo[i];
        __syncthreads();
        wo = sw;
    }
    int iy_lo = max(oy0 * g.s - g.pt, 0);
    int iy_hi = min((oy0 + DROWS - 1) * g.s - g.pt + g.kh - 1, g.h - 1);
    for (int ox0 = 0; ox0 < g.ow; ox0 += 32) {
        int ox = ox0 + lane;
        float acc[DROWS];
        for (int r = 0; r < DROWS; r++) acc[r] = 0.0f;
        if (ox < g.ow) {
            int ix0 = ox * g.s - g.pl;
            for (int c = grp; c < g.c; c += 8) {
                const float* xc = xn + c * g.h * g.w;
                const float* wc = wo + c * g.kh * g.kw;
                for (int iy = iy_lo; iy <= iy_hi; iy++) {
                    const float* xr = xc + iy * g.w;
                    for (int kx = 0; kx < g.kw; kx++) {
                        int ix = ix0 + kx;
                        if (ix < 0 || ix >= g.w) continue;
                        float xv = xr[ix];
#pragma unroll
                        for (int r = 0; r < DROWS; r++) {
                            int ky = iy - (oy0 + r) * g.s + g.pt;
                            if (ky >= 0 && ky < g.kh) acc[r] += wc[ky * g.kw + kx] * xv;
                        }
                    }
                }
            }
        }
        for (int r = 0; r < DROWS; r++) part[grp][r][lane] = acc[r];
        __syncthreads();
        if (grp < DROWS) {
            int oy = oy0 + grp;
            if (oy < g.oh && ox < g.ow) {
                float sum = has_b ? b[o] : 0.0f;
                for (int q = 0; q < 8; q++) sum += part[q][grp][lane];
                y[(((long)n * g.o + o) * g.oh + oy) * g.ow + ox] = sum;
            }
        }
        __syncthreads();
    }
}

// dx[n][c][iy][ix] += sum over (o, ky, kx) of w[o][c][ky][kx] dy[n][o][oy][ox] (few o), looping
// over the output pixels that see this input pixel (no per-tap division); image n is
// blockIdx.y.
extern "C" __global__ void conv_direct_dx_add(float* dx, const float* dy, const float* w, Geo g) {
    int total = g.c * g.h * g.w, P = g.oh * g.ow;
    const float* dn = dy + (long)blockIdx.y * g.o * P;
    float* xn = dx + (long)blockIdx.y * total;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ix = i % g.w, t = i / g.w, iy = t % g.h, c = t / g.h;
        int ty = iy + g.pt, tx = ix + g.pl;
        // ky = ty - oy s in [0, kh): oy from ceil((ty - kh + 1) / s) to floor(ty / s).
        int oy0 = ty - g.kh + 1 <= 0 ? 0 : (ty - g.kh + g.s) / g.s;
        int oy1 = min(ty / g.s, g.oh - 1);
        int ox0 = tx - g.kw + 1 <= 0 ? 0 : (tx - g.kw + g.s) / g.s;
        int ox1 = min(tx / g.s, g.ow - 1);
        float acc = 0.0f;
        for (int o = 0; o < g.o; o++) {
            const float* wo = w + ((long)o * g.c + c) * g.kh * g.kw;
            const float* d = dn + o * P;
            for (int oy = oy0; oy <= oy1; oy++) {
                const float* wr = wo + (ty - oy * g.s) * g.kw + tx;
                const float* dr = d + oy * g.ow;
                for (int ox = ox0; ox <= ox1; ox++) acc += wr[-ox * g.s] * dr[ox];
            }
        }
        xn[i] += acc;
    }
}

// dw[o][c][ky][kx] += sum over images and output pixels of dy x (few o): one block of 256 per
// (o, c); each thread accumulates every tap in its column of shared memory (kh kw x 256
// floats), then thread t sums tap t's 256 partials in order.
// Images in chunks of `per` (chunk blockIdx.y): with one chunk, the sums are added to dw;
// with several, chunk k writes its sums to dw + k * (o c kh kw), for the caller to add in order.
extern "C" __global__ void conv_direct_dw_add(float* dw, const float* dy, const float* x, Geo g,
                                              int per) {
    extern __shared__ float acc[];
    int c = blockIdx.x % g.c, o = blockIdx.x / g.c;
    int taps = g.kh * g.kw, tid = threadIdx.x, P = g.oh * g.ow;
    int n0 = blockIdx.y * per, n1 = min(g.n, n0 + per);
    for (int t = 0; t < taps; t++) acc[t * 256 + tid] = 0.0f;
    for (int n = n0; n < n1; n++) {
        const float* dn = dy + ((long)n * g.o + o) * P;
        const float* xc = x + ((long)n * g.c + c) * g.h * g.w;
        for (int p = tid; p < P; p += 256) {
            int ox = p % g.ow, oy = p / g.ow;
            float d = dn[p];
            int t = 0;
            for (int ky = 0; ky < g.kh; ky++) {
                int iy = oy * g.s - g.pt + ky;
                bool row = iy >= 0 && iy < g.h;
                for (int kx = 0; kx < g.kw; kx++, t++) {
                    int ix = ox * g.s - g.pl + kx;
                    if (row && ix >= 0 && ix < g.w) acc[t * 256 + tid] += d * xc[iy * g.w + ix];
                }
            }
        }
    }
    __syncthreads();
    for (int t = tid; t < taps; t += 256) {
        float sum = 0.0f;
        for (int j = 0; j < 256; j++) sum += acc[t * 256 + j];
        long at = ((long)o * g.c + c) * taps + t;
        if (gridDim.y == 1) dw[at] += sum;
        else dw[blockIdx.y * (long)g.o * g.c * taps + at] = sum;
    }
}

extern "C" __global__ void fill(float* y, float v, long total) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        y[i] = v;
    }
}

// y[i][oy][ox] = x[i][oy / f][ox / f] over the n*c planes of h x w.
extern "C" __global__ void upsample_fwd(float* y, const float* x, int h, int w, int f, long total) {
    long ow = (long)w * f, oh = (long)h * f;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        long ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        y[i] = x[(plane * h + oy / f) * w + ox / f];
    }
}

// dx[i][y][x] += sum of the f x f block of dy it was copied to.
extern "C" __global__ void upsample_bwd_add(float* dx, const float* dy, int h, int w, int f, long total) {
    long ow = (long)w * f;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        long x = i % w, y = (i / w) % h, plane = i / ((long)w * h);
        float acc = 0.0f;
        for (int a = 0; a < f; a++)
            for (int b = 0; b < f; b++)
                acc += dy[((plane * h + y) * f + a) * ow + x * f + b];
        dx[i] += acc;
    }
}

// Activations as the CPU kernels compute them: 0 identity, 1 ReLU, 2 LeakyReLU (slope a),
// 3 sigmoid, 4 tanh.
__device__ __forceinline__ float act_f(float v, int act, float a) {
    switch (act) {
    case 1: return v > 0.0f ? v : 0.0f;
    case 2: return v > 0.0f ? v : a * v;
    case 3:
        if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
        else { float e = expf(v); return e * (1.0f / (1.0f + e)); }
    case 4: return tanhf(v);
    default: return v;
    }
}

// act'(x) g from the output y = act(x): for ReLU and LeakyReLU (a >= 0), y > 0 exactly where
// x > 0 (the derivative at 0 is PyTorch's: 0, a).
__device__ __forceinline__ float act_d(float y, float g, int act, float a) {
    switch (act) {
    case 1: return y > 0.0f ? g : 0.0f;
    case 2: return y > 0.0f ? g : a * g;
    case 3: return y * (1.0f - y) * g;
    case 4: return (1.0f - y * y) * g;
    default: return g;
    }
}

// y = x c, element-wise
extern "C" __global__ void mul_elems(float* y, const float* x, const float* c, long total) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        y[i] = x[i] * c[i];
    }
}

// gx += gy c, element-wise
extern "C" __global__ void mul_elems_bwd_add(float* gx, const float* gy, const float* c, long total) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        gx[i] += gy[i] * c[i];
    }
}

// s = 1 where x > 0, else leak
extern "C" __global__ void positive_slopes(float* s, const float* x, float leak, long total) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        s[i] = x[i] > 0.0f ? 1.0f : leak;
    }
}

// y[n][o][p] = act(y[n][o][p] + b[o]) (no bias when has_b is 0)
extern "C" __global__ void bias_act(float* y, const float* b, int has_b, int o, int p, long total,
                                    int act, float a) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        float v = y[i];
        if (has_b) v += b[(i / p) % o];
        y[i] = act_f(v, act, a);
    }
}

// g[i] = act'(x[i]) gy[i], from the output y
extern "C" __global__ void act_grad(float* g, const float* gy, const float* y, long total, int act,
                                    float a) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        g[i] = act_d(y[i], gy[i], act, a);
    }
}

// db[ch] += sum over images and pixels of dy[n][ch][p]; one block of 256 per channel, in a
// fixed order. Large planes row by row; small ones (where most threads would idle) as one
// run of n p values, with 32-bit divisions (64-bit ones cost more than the sum).
extern "C" __global__ void bias_grad_add(float* db, const float* dy, int n, int o, int p) {
    __shared__ float s[256];
    int ch = blockIdx.x;
    float acc = 0.0f;
    if (p >= 128) {
        for (int img = 0; img < n; img++) {
            const float* d = dy + ((long)img * o + ch) * p;
            for (int q = threadIdx.x; q < p; q += blockDim.x) acc += d[q];
        }
    } else {
        for (int j = threadIdx.x; j < n * p; j += blockDim.x) {
            int img = j / p, q = j - img * p;
            acc += dy[((long)img * o + ch) * p + q];
        }
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int st = 128; st > 0; st >>= 1) {
        if (threadIdx.x < st) s[threadIdx.x] += s[threadIdx.x + st];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[ch] += s[0];
}

// dst[i] += sum over images of parts[n][i], images in order.
extern "C" __global__ void sum_batches_add(float* dst, const float* parts, int n, long len) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < len;
         i += (long)gridDim.x * blockDim.x) {
        float acc = 0.0f;
        for (int b = 0; b < n; b++) acc += parts[b * len + i];
        dst[i] += acc;
    }
}
