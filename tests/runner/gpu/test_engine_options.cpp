// Choosing the GPU engine from options and the service's variables, on a machine with a GPU.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runner/backend/gpu/backend.h"
#include "runner/cli/engine_flags.h"
#include "runner/cli/model_options.h"
#include "runner/engine/transformer.h"
#include "runner/selftest/gpu_checks.h"
#include "support/scoped_env.h"

namespace fs = std::filesystem;

namespace {

const fs::path model_dir = fs::path(OAR_FIXTURES) / "models/qwen3-qknorm-headdim";

runner_cli::OpenModel open() {
    std::ostringstream err;
    auto m = runner_cli::open_model(model_dir.string(), "test", err);
    REQUIRE_MESSAGE(m.has_value(), err.str());
    return std::move(*m);
}

// What the commands do: the flags resolved against the environment, then the engine made.
common::Result<runner::Engine> make_engine(runner_cli::OpenModel& m, const runner_cli::EngineFlags& flags) {
    auto options = runner_cli::resolve_engine_options(flags);
    if (!options) return options.error();
    return runner::make_engine(*m.source, std::move(m.weights), 64, *options);
}

// A --device flag as parse_engine_option reads it.
void set_device(runner_cli::EngineFlags& flags, const std::string& spec) {
    const std::vector<std::string> args = {"--device", spec};
    std::size_t i = 0;
    const auto taken = runner_cli::parse_engine_option(args, i, flags);
    REQUIRE(taken);
    REQUIRE(taken->ok());
}

}  // namespace

TEST_CASE("engine options: cuda:0 with a budget builds the GPU engine, whose logits match the CPU engine's") {
    // cuda:0 asks for an f32 KV cache with --kv-cache, hip:0 with AIRLLM_KV_CACHE: every step in f32,
    // as the CPU engine. auto keeps the default f16 cache, which rounds keys and values.
    runner_cli::EngineFlags cpu_flags;
    set_device(cpu_flags, "cpu");
    auto cpu_model = open();
    auto cpu = make_engine(cpu_model, cpu_flags);
    REQUIRE(cpu.ok());
    REQUIRE(cpu->model->load([](std::size_t, std::size_t) { return true; }).ok());
    CHECK(cpu->device_bytes == 0);

    for (const char* spec : {"cuda:0", "hip:0", "auto"}) {
        CAPTURE(spec);
        runner_cli::EngineFlags flags;
        set_device(flags, spec);
        flags.vram_budget = 64ull << 20;
        const std::string spec_name = spec;
        if (spec_name == "cuda:0") flags.kv_type = runner::KvType::f32;
        if (spec_name == "hip:0") ::setenv("AIRLLM_KV_CACHE", "f32", 1);
        const bool exact = spec_name != "auto";
        auto gpu_model = open();
        auto gpu = make_engine(gpu_model, flags);
        ::unsetenv("AIRLLM_KV_CACHE");
        REQUIRE_MESSAGE(gpu.ok(), (gpu.ok() ? "" : gpu.error().message));
        CHECK(gpu->description.find("(GPU 0)") != std::string::npos);
        CHECK(gpu->description.find(exact ? "f32 KV cache" : "f16 KV cache") != std::string::npos);
        CHECK(gpu->device_bytes > 0);
        CHECK(gpu->device_bytes <= 64ull << 20);
        REQUIRE(gpu->model->load([](std::size_t, std::size_t) { return true; }).ok());

        const std::int32_t prompt[] = {1, 5, 9, 200, 17};
        auto want = cpu->model->forward(prompt, 0);
        REQUIRE(want.ok());
        const std::vector<float> expected(want->begin(), want->end());
        auto got = gpu->model->forward(prompt, 0);
        REQUIRE(got.ok());
        float worst = 0;
        for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs((*got)[i] - expected[i]));
        CHECK(worst < (exact ? 2e-4f : 1e-2f));
    }
}

TEST_CASE("engine options: AIRLLM_VRAM_BUDGET is read, and a budget beyond free VRAM is refused") {
    runner_cli::EngineFlags flags;
    set_device(flags, "cuda:0");
    ::setenv("AIRLLM_VRAM_BUDGET", "1KiB", 1);
    auto m = open();
    auto small = make_engine(m, flags);
    ::unsetenv("AIRLLM_VRAM_BUDGET");
    REQUIRE_FALSE(small.ok());
    CHECK(small.error().message.find("a VRAM budget of 1 MiB cannot hold") != std::string::npos);

    flags.vram_budget = 1ull << 50;
    auto m2 = open();
    auto huge = make_engine(m2, flags);
    REQUIRE_FALSE(huge.ok());
    CHECK(huge.error().message.find("is more than the") != std::string::npos);
}

// What `ollama-airllm selftest` and a first load run on this GPU: every kernel against the CPU's.
TEST_CASE("engine options: the selftest's GPU kernel checks all pass on this GPU") {
    const auto checks = runner::selftest::check_gpu_kernels();
    CHECK(checks.size() > 40);
    for (const auto& c : checks) {
        CAPTURE(c.kernel);
        CAPTURE(c.failure);
        CHECK(c.passed());
    }
}

TEST_CASE("engine options: a broken kernel fails the GPU's first load by name, a broken BLAS only turns it off") {
    runner_cli::EngineFlags flags;
    set_device(flags, "cuda:0");
    {
        const test_support::ScopedEnv broken("AIRLLM_SELFTEST_BREAK", "matmul.q4_k.decode");
        auto m = open();
        auto refused = make_engine(m, flags);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().message.find("GPU kernel matmul.q4_k.decode gives wrong results") != std::string::npos);
        CHECK(refused.error().message.find("AIRLLM_DEVICE=cpu") != std::string::npos);
    }
    if (runner::gpu::Blas::available()) {
        const test_support::ScopedEnv broken("AIRLLM_SELFTEST_BREAK", "blas.bf16");
        auto m = open();
        auto engine = make_engine(m, flags);
        REQUIRE(engine.ok());
        CHECK(engine->description.find("BLAS off") != std::string::npos);
        CHECK_FALSE(runner::gpu::Blas::available());
    }
    // A load with no record (a fresh cache) checks again, and the BLAS that passes is back on.
    char cache[] = "/tmp/test_runner_gpu_cache.XXXXXX";
    REQUIRE(::mkdtemp(cache) != nullptr);
    auto m = open();
    const auto engine = [&] {
        const test_support::ScopedEnv fresh("AIRLLM_CACHE_DIR", std::string(cache));
        return make_engine(m, flags);
    }();
    REQUIRE(engine.ok());
    CHECK(engine->description.find("kernels checked") != std::string::npos);
    CHECK(engine->description.find("at an earlier load") == std::string::npos);
    CHECK(engine->description.find("BLAS off") == std::string::npos);
    CHECK(runner::gpu::Blas::available() == runner::gpu::Blas::loaded());
}
