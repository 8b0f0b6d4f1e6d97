// ollama-airllm selftest as a user runs it to fill in a bug report.
#include <doctest/doctest.h>

#include <filesystem>

#include "support/run_process.h"

namespace fs = std::filesystem;
using test_support::run_process;

namespace {

const std::string airllm = OAR_OLLAMA_AIRLLM;

}  // namespace

TEST_CASE("cli: selftest --device cpu checks every kernel, reports the rates and passes") {
    const auto r = run_process({airllm, "selftest", "--device", "cpu", "--threads", "2"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("device                  CPU: ") != std::string::npos);
    CHECK(r.out.find("  pass  cpu.dot.q4_k ") != std::string::npos);
    CHECK(r.out.find("FAIL") == std::string::npos);
    CHECK(r.out.find("host RAM read") != std::string::npos);
    CHECK(r.out.find("GB/s") != std::string::npos);
    CHECK(r.out.find("result                  pass, 40 kernels checked") != std::string::npos);
}

TEST_CASE("cli: selftest fails with exit 1 naming a broken kernel") {
    const auto r = run_process({airllm, "selftest", "--device", "cpu"}, {"AIRLLM_SELFTEST_BREAK=cpu.dot2.q5_k"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("  FAIL  cpu.dot2.q5_k ") != std::string::npos);
    CHECK(r.out.find("result                  FAIL: cpu.dot2.q5_k gives wrong results") != std::string::npos);
}

TEST_CASE("cli: selftest with a model prints what the planner does with it") {
    const auto model = fs::path(OAR_FIXTURES) / "models/llama-sharded";
    const auto r = run_process(
        {airllm, "selftest", "--device", "cpu", "--model", model.string(), "--ram-budget", "200KiB", "--threads", "2"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("plan                    CPU, 2 threads, ") != std::string::npos);
    CHECK(r.out.find("streamed from disk") != std::string::npos);
}

TEST_CASE("cli: selftest on a device this build or machine does not have is an error, and bad flags are usage errors") {
    const auto gpu = run_process({airllm, "selftest", "--device", "cuda:7"});
    CHECK(gpu.exit_code == 1);
    CHECK(gpu.err.find("ollama-airllm selftest: error: --device cuda:7: ") != std::string::npos);
    const auto bad = run_process({airllm, "selftest", "--ctx", "many"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--ctx wants a positive number of tokens") != std::string::npos);
}
