// The kernel checks and the first load's decision: a pass remembered per device, runtime and binary; a
// wrong kernel refused by name and never remembered; a failed BLAS turned off rather than the GPU refused;
// the test-only switch that breaks a kernel. Real files in a temporary cache; the checks are functions
// that count their runs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>

#include "runner/selftest/cpu_checks.h"
#include "runner/selftest/first_load.h"
#include "runner/selftest/kernel_check.h"
#include "support/scoped_env.h"
#include "support/temp_tree.h"

namespace selftest = runner::selftest;

namespace {

selftest::KernelCheck check(const char* kernel, float error) {
    selftest::KernelCheck c;
    c.kernel = kernel;
    c.error = error;
    c.tolerance = 1e-3f;
    return c;
}

const selftest::CheckedDevice h200{"0123456789abcdef0123456789abcdef", "0000:19:00.0",
                                   "NVIDIA H200, sm_90, CUDA driver 13.0, runtime 13.0, cuBLAS 13.0.0",
                                   "NVIDIA H200 (GPU 0)"};

// A run of the checks that gives `checks` and counts itself in `runs`.
std::function<std::vector<selftest::KernelCheck>()> counted(int& runs, std::vector<selftest::KernelCheck> checks) {
    return [&runs, checks = std::move(checks)] {
        ++runs;
        return checks;
    };
}

std::filesystem::path record_of(const std::filesystem::path& dir, const selftest::CheckedDevice& d) {
    return dir / (d.uuid + "-0000_19_00_0.pass");
}

}  // namespace

TEST_CASE("selftest: the relative error, and a NaN or a size mismatch fails") {
    std::vector<float> ours{1.f, 2.f, 4.1f};
    const std::vector<float> ref{1.f, 2.f, 4.f};
    CHECK(selftest::relative_error(ours, ref) == doctest::Approx(0.1f / 4.f));
    ours[0] = std::nanf("");
    CHECK(std::isinf(selftest::relative_error(ours, ref)));
    CHECK(std::isinf(selftest::relative_error(std::vector<float>{1.f}, ref)));
    std::vector<float> same = ref;
    CHECK(selftest::compare("k", same, ref, 0.f).passed());
}

TEST_CASE("selftest: AIRLLM_SELFTEST_BREAK breaks the kernels it names and no other") {
    const std::vector<float> ref{1.f, 2.f, 3.f};
    const test_support::ScopedEnv broken("AIRLLM_SELFTEST_BREAK", "cpu.dot.q4_k,matmul.bf16.decode");
    std::vector<float> a = ref, b = ref, c = ref;
    CHECK_FALSE(selftest::compare("cpu.dot.q4_k", a, ref, 1e-3f).passed());
    CHECK_FALSE(selftest::compare("matmul.bf16.decode", b, ref, 1e-3f).passed());
    CHECK(selftest::compare("cpu.dot.q4", c, ref, 1e-3f).passed());
}

TEST_CASE("selftest: the CPU's vector kernels agree with its portable ones on every weight format") {
    const auto checks = selftest::check_cpu_kernels();
    CHECK(checks.size() == 40);  // 10 formats x (dot, dot2, convert, matmul)
    for (const auto& c : checks) {
        CAPTURE(c.kernel);
        CHECK(c.passed());
    }
    const test_support::ScopedEnv broken("AIRLLM_SELFTEST_BREAK", "cpu.matmul.q6_k");
    const auto again = selftest::check_cpu_kernels();
    const auto* failed = selftest::first_failure(again);
    REQUIRE(failed != nullptr);
    CHECK(failed->kernel == "cpu.matmul.q6_k");
}

TEST_CASE("first load: the checks run once per device, runtime and binary, and a pass is remembered") {
    test_support::TempTree tree;
    const auto dir = selftest::kernel_checks_dir(tree.root());
    int runs = 0;
    const auto passing = counted(runs, {check("matmul.bf16.decode", 1e-6f), check("blas.bf16", 1e-4f)});
    auto first = selftest::check_at_first_load(dir, h200, passing);
    REQUIRE(first.ok());
    CHECK_FALSE(first->remembered);
    CHECK(runs == 1);
    CHECK(std::filesystem::exists(record_of(dir, h200)));

    auto second = selftest::check_at_first_load(dir, h200, passing);
    REQUIRE(second.ok());
    CHECK(second->remembered);
    CHECK(runs == 1);

    auto updated = h200;
    updated.identity = "NVIDIA H200, sm_90, CUDA driver 13.1, runtime 13.0, cuBLAS 13.0.0";
    REQUIRE(selftest::check_at_first_load(dir, updated, passing).ok());
    CHECK(runs == 2);

    auto other = h200;
    other.uuid = "fedcba9876543210fedcba9876543210";
    REQUIRE(selftest::check_at_first_load(dir, other, passing).ok());
    CHECK(runs == 3);

    // Two GPUs that ROCm gives the same uuid ("GPU-XX") are told apart by their slot.
    auto twin = h200;
    twin.pci = "0000:c4:00.0";
    twin.identity = "AMD Radeon 780M, gfx1103, HIP driver 6.4.43482, runtime 6.4.43482, rocBLAS absent";
    REQUIRE(selftest::check_at_first_load(dir, twin, passing).ok());
    CHECK(runs == 4);
    auto again = selftest::check_at_first_load(dir, updated, passing);  // its slot's record is intact
    REQUIRE(again.ok());
    CHECK(again->remembered);
    CHECK(runs == 4);
}

TEST_CASE("first load: a wrong kernel refuses the GPU by name, with the way out, and is checked again next time") {
    test_support::TempTree tree;
    const auto dir = selftest::kernel_checks_dir(tree.root());
    int runs = 0;
    const auto failing = counted(runs, {check("matmul.bf16.decode", 1e-6f), check("attention.decode.f16_cache", 0.5f)});
    for (int attempt = 1; attempt <= 2; ++attempt) {
        auto r = selftest::check_at_first_load(dir, h200, failing);
        REQUIRE_FALSE(r.ok());
        CHECK(runs == attempt);
        const auto& message = r.error().message;
        CHECK(message.find("attention.decode.f16_cache gives wrong results") != std::string::npos);
        CHECK(message.find("NVIDIA H200 (GPU 0)") != std::string::npos);
        CHECK(message.find("AIRLLM_DEVICE=cpu") != std::string::npos);
        CHECK(message.find("ollama-airllm selftest") != std::string::npos);
        CHECK(message.find('\n') == std::string::npos);  // one line in the service's log
    }
    CHECK_FALSE(std::filesystem::exists(record_of(dir, h200)));
}

TEST_CASE("first load: a failed BLAS turns the BLAS off and keeps the GPU, and that is remembered too") {
    test_support::TempTree tree;
    const auto dir = selftest::kernel_checks_dir(tree.root());
    int runs = 0;
    const auto blas_wrong = counted(runs, {check("matmul.bf16.decode", 1e-6f), check("blas.bf16", 0.3f)});
    auto first = selftest::check_at_first_load(dir, h200, blas_wrong);
    REQUIRE(first.ok());
    CHECK(first->blas_failure.find("blas.bf16 gives wrong results") != std::string::npos);
    auto second = selftest::check_at_first_load(dir, h200, blas_wrong);
    REQUIRE(second.ok());
    CHECK(second->remembered);
    CHECK(runs == 1);
    CHECK(second->blas_failure == first->blas_failure);
}

TEST_CASE("first load: a kernel that throws fails with what it said") {
    test_support::TempTree tree;
    selftest::KernelCheck threw;
    threw.kernel = "matmul.q4_k.prompt";
    threw.failure = "cudaLaunchKernel failed: invalid device function";
    auto r = selftest::check_at_first_load(selftest::kernel_checks_dir(tree.root()), h200,
                                           [&] { return std::vector<selftest::KernelCheck>{threw}; });
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("matmul.q4_k.prompt failed: cudaLaunchKernel failed: invalid device function") !=
          std::string::npos);
}

TEST_CASE("first load: with the break switch set, nothing is read from or written to the cache") {
    test_support::TempTree tree;
    const auto dir = selftest::kernel_checks_dir(tree.root());
    int runs = 0;
    const auto passing = counted(runs, {check("matmul.bf16.decode", 1e-6f)});
    REQUIRE(selftest::check_at_first_load(dir, h200, passing).ok());
    const test_support::ScopedEnv broken("AIRLLM_SELFTEST_BREAK", "nothing.in.particular");
    auto r = selftest::check_at_first_load(dir, h200, passing);
    REQUIRE(r.ok());
    CHECK_FALSE(r->remembered);
    CHECK(runs == 2);
}
