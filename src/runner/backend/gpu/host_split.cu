// What a split layer's decode step exchanges with the host: the host's sum added into the residual, and,
// where a thread of the host's computes its rows while the stream runs on, the counters by which each waits
// for the other (HostFlag): the MLP input written out by a kernel that then raises one, the sum added by a
// kernel that first waits for the other.
#include <atomic>
#include <thread>

#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 256;

__global__ void add_kernel(float* x, const float* y, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

// One thread, so that the wait reads the host's word over the link about every half microsecond, not once
// per block: the link is busy copying layers meanwhile. The add after it starts when this kernel ends.
__global__ void wait_for_host_kernel(const unsigned long long* flag, unsigned long long value) {
    while (load_acquire_system(flag) < value) pause_briefly();
}

// One block, so that its first thread can raise the flag once every thread's writes are out: each fences
// its own at system scope before the barrier.
__global__ void copy_out_kernel(float* dst, const float* src, std::size_t n, unsigned long long* flag,
                                unsigned long long value) {
    for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
    __threadfence_system();
    __syncthreads();
    if (flag && threadIdx.x == 0) store_release_system(flag, value);
}
constexpr int copy_out_threads = 1024;

std::atomic_ref<std::uint64_t> flag_word(const PinnedBuffer& word) {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(word.data()));
}

unsigned long long* device_word(const HostFlag& flag) {
    return reinterpret_cast<unsigned long long*>(const_cast<std::uint64_t*>(flag.word()));
}

}  // namespace

// The kernels that wait on a flag or raise it are loaded now: CUDA loads a kernel at its first launch
// (lazy loading, the default since 12.2), and that load may wait for the device to go idle, which a
// kernel spinning on a flag that the loading thread itself is to raise would never let it do.
HostFlag::HostFlag() : word_(sizeof(std::uint64_t), true) {
    flag_word(word_).store(0, std::memory_order_release);
    cudaFuncAttributes attributes{};
    GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(add_kernel)));
    GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(wait_for_host_kernel)));
    GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(copy_out_kernel)));
}

void HostFlag::raise(std::uint64_t value) const {
    auto word = flag_word(word_);
    std::uint64_t now = word.load(std::memory_order_relaxed);
    while (now < value && !word.compare_exchange_weak(now, value, std::memory_order_release)) {
    }
}

std::uint64_t HostFlag::value() const { return flag_word(word_).load(std::memory_order_acquire); }

bool HostFlag::wait_for(std::uint64_t value, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (unsigned i = 1;; ++i) {
        if (this->value() >= value) return true;
        if (i % 64 == 0) {
            if (std::chrono::steady_clock::now() > deadline) return this->value() >= value;
            std::this_thread::yield();
        }
    }
}

void add(float* x, const float* y, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    add_kernel<<<blocks_for(n, threads), threads, 0, native(stream)>>>(x, y, n);
    GPU_CHECK_LAUNCH();
}

void add_when_raised(float* x, const float* y, std::size_t n, const HostFlag& flag, std::uint64_t value,
                     const Stream& stream) {
    if (n == 0) return;
    wait_for_host_kernel<<<1, 1, 0, native(stream)>>>(device_word(flag), value);
    GPU_CHECK_LAUNCH();
    add(x, y, n, stream);
}

void copy_out_raising(float* dst, const float* src, std::size_t n, const HostFlag* flag, std::uint64_t value,
                      const Stream& stream) {
    copy_out_kernel<<<1, copy_out_threads, 0, native(stream)>>>(dst, src, n, flag ? device_word(*flag) : nullptr,
                                                                value);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
