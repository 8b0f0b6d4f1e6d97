// One kernel's known-answer check, as `ollama-airllm selftest` reports it and the first load of a
// device runs it: the kernel's output on small known inputs against a reference's (the CPU's kernels for
// a GPU, the portable kernels for the CPU's vector paths).
#pragma once

#include <span>
#include <string>
#include <vector>

namespace runner::selftest {

struct KernelCheck {
    std::string kernel;  // "matmul.q4_k.decode", "cpu.dot.bf16"
    float error = 0;     // largest |ours - reference| over the largest |reference|
    float tolerance = 0;
    std::string failure;  // the kernel threw: what it said
    bool passed() const { return failure.empty() && error <= tolerance; }
};

// Infinity when ours has a NaN or an infinity, or the sizes differ.
float relative_error(std::span<const float> ours, std::span<const float> reference);

// Compares `ours` with `reference`. AIRLLM_SELFTEST_BREAK (test-only) names kernels, comma-separated,
// whose output is perturbed before the comparison: proof, on a machine where every kernel works, that
// a wrong kernel fails the selftest and the first load by its name.
KernelCheck compare(std::string kernel, std::span<float> ours, std::span<const float> reference, float tolerance);

// The first check that failed, or nullptr.
const KernelCheck* first_failure(const std::vector<KernelCheck>& checks);

}  // namespace runner::selftest
