// Training-mode batch normalization over (N, C, L) row-major data, per feature c over its N x L
// values, as src/ops/batch_norm.rs computes it on the CPU: statistics summed in double, in a
// fixed order (one block of 256 threads per feature, no atomics), so a run repeats bit for bit.

// The sum of every thread's v (blockDim.x == 256), in a fixed order; s: 256 doubles shared.
__device__ double bn_block_sum(double* s, double v) {
    s[threadIdx.x] = v;
    __syncthreads();
    for (int st = 128; st > 0; st >>= 1) {
        if (threadIdx.x < st) s[threadIdx.x] += s[threadIdx.x + st];
        __syncthreads();
    }
    double total = s[0];
    __syncthreads();
    return total;
}

// Feature blockIdx.x: its mean, 1 / sqrt(biased variance + eps), and unbiased variance (for
// the running statistics), from two passes over its values.
extern "C" __global__ void bn_stats(float* mean, float* inv_std, float* var_unbiased,
                                    const float* x, int n, int c, int l, double eps) {
    __shared__ double s[256];
    int ch = blockIdx.x, m = n * l;
    double acc = 0.0;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        int img = j / l, q = j - img * l;
        acc += (double)x[((long)img * c + ch) * l + q];
    }
    double mu = bn_block_sum(s, acc) / m;
    acc = 0.0;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        int img = j / l, q = j - img * l;
        double d = (double)x[((long)img * c + ch) * l + q] - mu;
        acc += d * d;
    }
    double var = bn_block_sum(s, acc) / m;
    if (threadIdx.x == 0) {
        mean[ch] = (float)mu;
        inv_std[ch] = (float)(1.0 / sqrt(var + eps));
        var_unbiased[ch] = (float)(var * m / (m - 1));
    }
}

// y = gamma x_hat + beta, x_hat = (x - mean) inv_std
extern "C" __global__ void bn_forward(float* y, const float* x, const float* mean,
                                      const float* inv_std, const float* gamma, const float* beta,
                                      int c, int l, long total) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        int ch = (int)((i / l) % c);
        float h = (x[i] - mean[ch]) * inv_std[ch];
        y[i] = gamma[ch] * h + beta[ch];
    }
}

// Feature blockIdx.x: sum(dy) and sum(dy x_hat) (products in float, sums in double), kept in
// sums[ch] and sums[c + ch] for bn_backward_dx_add and added to dbeta and dgamma.
extern "C" __global__ void bn_backward_sums(float* sums, float* dgamma, float* dbeta,
                                            const float* dy, const float* x, const float* mean,
                                            const float* inv_std, int n, int c, int l) {
    __shared__ double s[256];
    int ch = blockIdx.x, m = n * l;
    float mu = mean[ch], is = inv_std[ch];
    double acc_dy = 0.0, acc_dyh = 0.0;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        int img = j / l, q = j - img * l;
        long at = ((long)img * c + ch) * l + q;
        float d = dy[at], h = (x[at] - mu) * is;
        acc_dy += (double)d;
        acc_dyh += (double)(d * h);
    }
    double sum_dy = bn_block_sum(s, acc_dy);
    double sum_dyh = bn_block_sum(s, acc_dyh);
    if (threadIdx.x == 0) {
        sums[ch] = (float)sum_dy;
        sums[c + ch] = (float)sum_dyh;
        dbeta[ch] += (float)sum_dy;
        dgamma[ch] += (float)sum_dyh;
    }
}

// dx += gamma inv_std / M (M dy - sum(dy) - x_hat sum(dy x_hat)), M = N L = total / c
extern "C" __global__ void bn_backward_dx_add(float* dx, const float* dy, const float* x,
                                              const float* mean, const float* inv_std,
                                              const float* gamma, const float* sums, int c,
                                              int l, long total) {
    long m = total / c;
    float count = (float)m, inv_count = (float)(1.0 / (double)m);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)gridDim.x * blockDim.x) {
        int ch = (int)((i / l) % c);
        float is = inv_std[ch];
        float h = (x[i] - mean[ch]) * is;
        float g = gamma[ch] * is * inv_count;
        dx[i] += g * (count * dy[i] - sums[ch] - h * sums[c + ch]);
    }
}
