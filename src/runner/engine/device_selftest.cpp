#include "runner/engine/device_selftest.h"

#include <cstdio>
#include <fstream>

#include "runner/backend/cpu/int8_dot.h"
#include "runner/backend/cpu/simd.h"
#include "runner/selftest/cpu_checks.h"
#include "runner/selftest/host_rates.h"
#ifdef OAR_HAVE_GPU
#include "runner/backend/gpu/backend.h"
#include "runner/selftest/gpu_checks.h"
#endif

namespace runner {

namespace {

std::string rate(double value, const char* unit) {
    char text[64];
    std::snprintf(text, sizeof text, "%.1f %s", value, unit);
    return text;
}

// "model name" from /proc/cpuinfo: what the CPU is, for the report.
std::string cpu_model() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);)
        if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
            return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

DeviceSelftest cpu_selftest() {
    DeviceSelftest t;
    t.facts.emplace_back("device", "CPU: " + cpu_model());
    t.facts.emplace_back("kernels",
                         std::string(cpu::using_avx2() ? "AVX2+FMA, checked against the portable kernels"
                                                       : "portable only (no AVX2): nothing to compare them with") +
                             "; quantized rows on 8-bit activations" +
                             (cpu::using_vnni() ? " (prompts through AVX512-VNNI)" : ""));
    t.checks = selftest::check_cpu_kernels();
    t.rates.emplace_back("host RAM read", rate(selftest::host_read_gbps(), "GB/s"));
    t.rates.emplace_back("prompt products (bf16)", rate(selftest::cpu_matrix_gflops(), "GFLOP/s"));
    return t;
}

}  // namespace

common::Result<DeviceSelftest> selftest_device(const Device& device) {
    const auto chosen = gpu_index(device);
    if (!chosen) return chosen.error();
#ifndef OAR_HAVE_GPU
    return cpu_selftest();  // gpu_index names no GPU in this build
#else
    if (*chosen < 0) return cpu_selftest();
    const int index = *chosen;
    try {
        gpu::use_device(index);
        const auto info = gpu::device_info();
        DeviceSelftest t;
        t.facts.emplace_back("device", info.name + " (GPU " + std::to_string(index) + "), " + info.arch + ", " +
                                           std::to_string(info.total_bytes >> 20) + " MiB");
        t.facts.emplace_back("runtime", info.runtime);
        t.facts.emplace_back("wave size", std::to_string(info.warp_size));
        t.facts.emplace_back("uuid", info.uuid + " at " + info.pci);
        t.checks = selftest::check_gpu_kernels();
        t.facts.emplace_back("blas", gpu::Blas::description());  // after the checks, which may turn it off
        const auto rates = selftest::measure_gpu_rates();
        t.rates.emplace_back("host RAM read", rate(selftest::host_read_gbps(), "GB/s"));
        t.rates.emplace_back("pinned upload", rate(rates.upload_gbps, "GB/s"));
        t.rates.emplace_back("prompt products (bf16)", rate(rates.matrix_tflops, "TFLOP/s on ") + rates.matrix_on);
        return t;
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
#endif
}

}  // namespace runner
