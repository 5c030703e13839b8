// The fused optimizer update of fused_update.rs, compiled by NVRTC at first use on a GPU
// (without fused multiply-adds).
struct Coef { int adam; float b1, one_b1, b2, one_b2, step, bc2_sqrt, lr, eps; };

// One parameter's update, element-wise in the CPU optimizer's order; block b writes its part
// of sum(g^2) + 0 * sum(new p) (NaN when a new value is not finite) to partial[b], summed in a
// fixed order.
extern "C" __global__ void fused_update(float* p, float* stage, float* m, float* v,
                                        const float* g, long n, Coef c, float* partial) {
    __shared__ float s[256];
    float acc = 0.0f;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n;
         i += (long)gridDim.x * blockDim.x) {
        float gi = g[i];
        float vi = v[i] * c.b2 + gi * gi * c.one_b2;
        float pi;
        if (c.adam) {
            float mi = m[i] * c.b1 + gi * c.one_b1;
            m[i] = mi;
            float denom = sqrtf(vi) / c.bc2_sqrt + c.eps;
            pi = p[i] - c.step * mi / denom;
        } else {
            pi = p[i] - c.lr * gi / (sqrtf(vi) + c.eps);
        }
        v[i] = vi;
        p[i] = pi;
        stage[i] = pi;
        acc += gi * gi + 0.0f * pi;
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int st = 128; st > 0; st >>= 1) {
        if (threadIdx.x < st) s[threadIdx.x] += s[threadIdx.x + st];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

// out[0] = the sum of partial[0..count], in a fixed order (one block of 256).
extern "C" __global__ void sum_partials(float* out, const float* partial, int count) {
    __shared__ float s[256];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < count; i += 256) acc += partial[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int st = 128; st > 0; st >>= 1) {
        if (threadIdx.x < st) s[threadIdx.x] += s[threadIdx.x + st];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = s[0];
}
