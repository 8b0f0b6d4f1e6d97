// Devices, memory, streams and events: thin RAII over the vendor runtime.
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
    info.warp_size = props.warpSize;
    GPU_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
    int driver = 0, runtime = 0;
    GPU_CHECK(cudaDriverGetVersion(&driver));
    GPU_CHECK(cudaRuntimeGetVersion(&runtime));
#if defined(OAR_GPU_HIP)
    hipDevice_t device = 0;
    GPU_CHECK(hipDeviceGet(&device, index));
    hipUUID id{};
    GPU_CHECK(hipDeviceGetUuid(&id, device));
    info.arch = props.gcnArchName;
    // HIP's versions are major * 10000000 + minor * 100000 + patch.
    const auto hip_version = [](int v) {
        return std::to_string(v / 10000000) + "." + std::to_string(v / 100000 % 100) + "." + std::to_string(v % 100000);
    };
    info.runtime = "HIP driver " + hip_version(driver) + ", runtime " + hip_version(runtime);
#else
    const cudaUUID_t id = props.uuid;
    info.arch = "sm_" + std::to_string(props.major) + std::to_string(props.minor);
    const auto cuda_version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    info.runtime = "CUDA driver " + cuda_version(driver) + ", runtime " + cuda_version(runtime);
#endif
    char pci[32] = {};
    GPU_CHECK(cudaDeviceGetPCIBusId(pci, sizeof pci, index));
    info.pci = pci;
    static constexpr char hex[] = "0123456789abcdef";
    for (const char byte : id.bytes) {
        info.uuid += hex[static_cast<unsigned char>(byte) >> 4];
        info.uuid += hex[static_cast<unsigned char>(byte) & 0xf];
    }
    return info;
}

void DeviceFree::operator()(void* p) const noexcept { (void)cudaFree(p); }
void PinnedFree::operator()(std::byte* p) const noexcept { (void)cudaFreeHost(p); }
void StreamDestroy::operator()(void* s) const noexcept { (void)cudaStreamDestroy(static_cast<cudaStream_t>(s)); }
void EventDestroy::operator()(void* e) const noexcept { (void)cudaEventDestroy(static_cast<cudaEvent_t>(e)); }

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    void* p = nullptr;
    GPU_CHECK(cudaMalloc(&p, bytes));
    ptr_.reset(p);
}

DeviceBuffer DeviceBuffer::zeroed(std::size_t bytes, const Stream& stream) {
    DeviceBuffer b(bytes);
    if (bytes > 0) GPU_CHECK(cudaMemsetAsync(b.data(), 0, bytes, as_stream(stream)));
    return b;
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    void* p = nullptr;
    GPU_CHECK(cudaMallocHost(&p, bytes));
    ptr_.reset(static_cast<std::byte*>(p));
}

Stream::Stream() {
    cudaStream_t s = nullptr;
    GPU_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    handle_.reset(s);
}
void Stream::synchronize() const { GPU_CHECK(cudaStreamSynchronize(as_stream(*this))); }

Event::Event(bool timing) {
    cudaEvent_t e = nullptr;
    GPU_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
    handle_.reset(e);
}
void Event::record(const Stream& s) const {
    GPU_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_.get()), as_stream(s)));
}
void Event::wait_in(const Stream& s) const {
    GPU_CHECK(cudaStreamWaitEvent(as_stream(s), static_cast<cudaEvent_t>(handle_.get()), 0));
}
void Event::synchronize() const { GPU_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_.get()))); }
bool Event::done() const {
    const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(handle_.get()));
    if (status == cudaErrorNotReady) {
        (void)cudaGetLastError();  // not an error: clears it so that the next check does not report it
        return false;
    }
    GPU_CHECK(status);
    return true;
}
float Event::elapsed_ms_since(const Event& start) const {
    float ms = 0;
    GPU_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_.get()),
                                   static_cast<cudaEvent_t>(handle_.get())));
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
