#include "runner/selftest/gpu_bandwidth.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "runner/backend/gpu/backend.h"

namespace runner::selftest {

namespace gpu = runner::gpu;

namespace {

// GB/s of `copy` moving `bytes_moved`, timed with events, best of three.
double best_copy_gbs(const std::function<void(const gpu::Stream&)>& copy, double bytes_moved) {
    gpu::Stream s;
    gpu::Event start(true), stop(true);
    double best = 0;
    for (int i = 0; i < 3; ++i) {
        start.record(s);
        copy(s);
        stop.record(s);
        stop.synchronize();
        best = std::max(best, bytes_moved / (stop.elapsed_ms_since(start) * 1e6));
    }
    return best;
}

}  // namespace

double pinned_h2d_gbs() {
    gpu::PinnedBuffer host(copy_bytes);
    std::memset(host.data(), 1, copy_bytes);
    gpu::DeviceBuffer device(copy_bytes);
    return best_copy_gbs([&](const gpu::Stream& s) { gpu::copy_to_device(device.data(), host.data(), copy_bytes, s); },
                         copy_bytes);
}

double device_copy_gbs() {
    gpu::DeviceBuffer a(copy_bytes), b(copy_bytes);
    return best_copy_gbs([&](const gpu::Stream& s) { gpu::copy_on_device(b.data(), a.data(), copy_bytes, s); },
                         2.0 * copy_bytes);
}

}  // namespace runner::selftest
