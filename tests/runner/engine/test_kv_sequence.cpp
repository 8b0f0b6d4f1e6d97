// The prompt cache on the CPU engine, with every layer in memory and with layers streamed from the
// model's files: each request's logits equal a run from position 0 (tests/runner/support/prefix_reuse.h).
#include <doctest/doctest.h>

#include <filesystem>

#include "runner/engine/transformer.h"
#include "runner/model/gguf_model.h"
#include "runner/model/hf_folder.h"
#include "runner/support/prefix_reuse.h"

namespace fs = std::filesystem;

namespace {

const fs::path models = fs::path(OAR_FIXTURES) / "models";

// Some layers streamed: a RAM budget that holds the embeddings, the head and the first layer.
runner::LayerPlan streaming_plan(const runner::ModelWeights& w) {
    const auto everything = runner::plan_layers(w, 0);
    return runner::plan_layers(w, everything.resident_bytes - w.layers.back().bytes() - w.layers[1].bytes());
}

void check_cpu_source(const std::string& name, common::Result<runner::WeightSourcePtr> source, bool streamed) {
    CAPTURE(name);
    CAPTURE(streamed);
    REQUIRE(source.ok());
    auto weights = [&] { return std::move(runner::bind_weights(**source)).value(); };
    auto a = weights(), b = weights();
    auto plan_a = streamed ? streaming_plan(a) : runner::plan_layers(a, 0);
    auto plan_b = streamed ? streaming_plan(b) : runner::plan_layers(b, 0);
    if (streamed) REQUIRE(plan_a.streamed_bytes > 0);
    runner::Transformer reused(**source, std::move(a), 64, 2, std::move(plan_a));
    runner::Transformer fresh(**source, std::move(b), 64, 2, std::move(plan_b));
    // Both run the same kernels on the same rows; a suffix batch and a whole-prompt batch may tile the
    // products differently, which moves the last bits only.
    test_support::check_prefix_reuse(reused, fresh, 1e-5f);
}

void check_cpu(const std::string& name, bool streamed) {
    check_cpu_source(name, runner::open_hf_folder(models / name), streamed);
}

}  // namespace

// A test case each: the cases are subcases, which doctest runs once per pass through the test case.
TEST_CASE("prompt cache, CPU engine: llama with GQA and llama3 RoPE, every layer in memory") {
    check_cpu("llama-gqa4-llama3rope", false);
}

TEST_CASE("prompt cache, CPU engine: llama with GQA and llama3 RoPE, layers streamed from disk") {
    check_cpu("llama-gqa4-llama3rope", true);
}

TEST_CASE("prompt cache, CPU engine: qwen2 with biases and a tied head") { check_cpu("qwen2-bias-tied", false); }

TEST_CASE("prompt cache, CPU engine: qwen3 with per-head norms, layers streamed") {
    check_cpu("qwen3-qknorm-headdim", true);
}

// Quantized rows take 8-bit activations in prompts and decode steps alike, each token's products equal
// whatever pass it came in: a reused prefix (written by decode steps) still equals a run from scratch.
TEST_CASE("prompt cache, CPU engine: a GGUF model in Q4_K_M on 8-bit activations") {
    const auto file = fs::path(OAR_FIXTURES) / "gguf-models" / "llama-q4_k_m.gguf";
    check_cpu_source("llama-q4_k_m", runner::open_gguf_model(file), false);
}
