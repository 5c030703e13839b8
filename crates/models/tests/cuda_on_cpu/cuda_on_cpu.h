// Just enough of CUDA C to run mouton's kernels on the CPU, for tests on machines without a
// GPU. A launch runs its blocks one after another, each CUDA thread an OS thread, so that
// __syncthreads is a real barrier. Static shared memory becomes function statics, and the test
// rewrites `extern __shared__` arrays into this file's buffer: both right because one block
// runs at a time. Not emulated: warps (shuffles, votes), atomics, concurrency between blocks;
// the kernels under test use none of them. The test generates the `main` that reads buffers
// and launches from files and writes the buffers back.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <barrier>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3() = default;
    dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static std::barrier<>* cuda_on_cpu_barrier = nullptr;
// 48 KiB, CUDA's default limit of dynamic shared memory per block.
alignas(16) static unsigned char cuda_on_cpu_dynamic_shared[48 * 1024];

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__

static inline void __syncthreads() { cuda_on_cpu_barrier->arrive_and_wait(); }

using std::max;
using std::min;

// Runs `body` (a kernel call) for every block of `grid` and thread of `block`: one OS thread
// per CUDA thread, going through the blocks in order together.
template <class Body>
static void cuda_on_cpu_launch(dim3 grid, dim3 block, size_t dynamic_bytes, Body body) {
    if (dynamic_bytes > sizeof(cuda_on_cpu_dynamic_shared)) {
        fprintf(stderr, "a launch asks %zu bytes of dynamic shared memory (at most %zu)\n",
                dynamic_bytes, sizeof(cuda_on_cpu_dynamic_shared));
        exit(3);
    }
    unsigned threads = block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || grid.x * grid.y * grid.z == 0) {
        fprintf(stderr, "an invalid launch: %u threads per block\n", threads);
        exit(3);
    }
    gridDim = grid;
    blockDim = block;
    std::barrier<> sync((ptrdiff_t)threads);
    cuda_on_cpu_barrier = &sync;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
            for (unsigned bz = 0; bz < grid.z; bz++)
                for (unsigned by = 0; by < grid.y; by++)
                    for (unsigned bx = 0; bx < grid.x; bx++) {
                        blockIdx = dim3(bx, by, bz);
                        // Garbage, as on a GPU: a kernel must not read shared memory it did
                        // not write.
                        if (t == 0)
                            for (size_t i = 0; i < sizeof(cuda_on_cpu_dynamic_shared); i++)
                                cuda_on_cpu_dynamic_shared[i] = (unsigned char)(i * 131 + bx + 7);
                        sync.arrive_and_wait();
                        body();
                        // The block's shared memory is the next block's.
                        sync.arrive_and_wait();
                    }
        });
    }
    for (auto& th : pool) th.join();
    cuda_on_cpu_barrier = nullptr;
}

