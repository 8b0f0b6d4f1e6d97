// Devices, memory, streams and events: thin RAII over the vendor runtime.
#include <utility>

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/check.h"

namespace runner::gpu {

namespace {

cudaStream_t as_stream(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

}  // namespace

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky "no driver" error
        return 0;
    }
    return n;
}

void use_device(int index) { GPU_CHECK(cudaSetDevice(index)); }

DeviceInfo device_info() {
    DeviceInfo info;
    int index = 0;
#if defined(OAR_GPU_HIP)
    GPU_CHECK(hipGetDevice(&index));
#else
    GPU_CHECK(cudaGetDevice(&index));
#endif
    cudaDeviceProp props{};
    GPU_CHECK(cudaGetDeviceProperties(&props, index));
    info.name = props.name;
    GPU_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
    return info;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) GPU_CHECK(cudaMalloc(&ptr_, bytes));
}
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) (void)cudaFree(ptr_);
        ptr_ = std::exchange(o.ptr_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
}
DeviceBuffer::~DeviceBuffer() {
    if (ptr_) (void)cudaFree(ptr_);
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
        void* p = nullptr;
        GPU_CHECK(cudaMallocHost(&p, bytes));
        ptr_ = static_cast<std::byte*>(p);
    }
}
PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) (void)cudaFreeHost(ptr_);
        ptr_ = std::exchange(o.ptr_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
}
PinnedBuffer::~PinnedBuffer() {
    if (ptr_) (void)cudaFreeHost(ptr_);
}

Stream::Stream() {
    cudaStream_t s = nullptr;
    GPU_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    handle_ = s;
}
Stream::Stream(Stream&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
Stream& Stream::operator=(Stream&& o) noexcept {
    if (this != &o) {
        if (handle_) (void)cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
        handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
}
Stream::~Stream() {
    if (handle_) (void)cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
}
void Stream::synchronize() const { GPU_CHECK(cudaStreamSynchronize(as_stream(*this))); }

Event::Event(bool timing) {
    cudaEvent_t e = nullptr;
    GPU_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
    handle_ = e;
}
Event::Event(Event&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
Event& Event::operator=(Event&& o) noexcept {
    if (this != &o) {
        if (handle_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
        handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
}
Event::~Event() {
    if (handle_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
}
void Event::record(const Stream& s) const {
    GPU_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_), as_stream(s)));
}
void Event::wait_in(const Stream& s) const {
    GPU_CHECK(cudaStreamWaitEvent(as_stream(s), static_cast<cudaEvent_t>(handle_), 0));
}
void Event::synchronize() const { GPU_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_))); }
float Event::elapsed_ms_since(const Event& start) const {
    float ms = 0;
    GPU_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_), static_cast<cudaEvent_t>(handle_)));
    return ms;
}

void copy_to_device(void* dst, const void* src, std::size_t bytes, const Stream& s) {
    GPU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(s)));
}
void copy_to_host(void* dst, const void* src, std::size_t bytes, const Stream& s) {
    GPU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(s)));
}
void copy_on_device(void* dst, const void* src, std::size_t bytes, const Stream& s) {
    GPU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(s)));
}

}  // namespace runner::gpu
