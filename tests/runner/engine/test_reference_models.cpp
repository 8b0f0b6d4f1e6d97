// Our CPU forward pass against Hugging Face transformers on the tiny models of tests/fixtures/models
// (made by tools/reference/make_tiny_models.py): prefill logits, decode logits, 32 greedy tokens. And the
// tiny GGUF models of tests/fixtures/gguf-models, in every block layout the runner reads, against a float64
// numpy forward pass over gguf's own dequantization (tools/reference/make_gguf_models.py), on f32
// activations and on the default 8-bit ones (tools/reference/make_gguf_int8_reference.py).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "runner/backend/cpu/simd.h"
#include "runner/engine/generate.h"
#include "runner/engine/transformer.h"
#include "runner/model/gguf_model.h"
#include "runner/model/hf_folder.h"
#include "runner/support/f32_products.h"
#include "runner/support/reference_logits.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;

namespace {

const fs::path models = fs::path(OAR_FIXTURES) / "models";
const fs::path gguf_models = fs::path(OAR_FIXTURES) / "gguf-models";

// Logits (magnitudes up to ~5) agree to ~2e-6 (the reference file keeps 6 decimals); summation
// order is all that differs from PyTorch, so 1e-4 leaves room for other CPUs and thread counts.
constexpr float tolerance = 1e-4f;

using Opener = std::function<common::Result<runner::WeightSourcePtr>()>;

// How many greedy tokens must equal the reference's: all of them, unless the reference records its
// margins (the 8-bit one), where a step whose two best logits lie within 1e-3 is a tie that float32 and
// float64 may break either way (qwen2-q8_0's fourth, 6e-4 apart), and the tokens after it diverge.
std::ptrdiff_t comparable_steps(const nlohmann::json& ref) {
    const auto n = static_cast<std::ptrdiff_t>(ref["greedy_ids"].size());
    if (!ref.contains("greedy_margins")) return n;
    const auto margins = ref["greedy_margins"].get<std::vector<double>>();
    const auto tie = std::find_if(margins.begin(), margins.end(), [](double m) { return m < 1e-3; });
    return std::min(n, tie - margins.begin());
}

// The reference's prefill and decode logits, then its greedy tokens from a fresh start. The GGUF models'
// weights are exactly what gguf dequantizes, so the same tolerance holds for every block layout.
void check_source(const std::string& name, const nlohmann::json& ref, const Opener& open,
                  float logits_tolerance = tolerance) {
    CAPTURE(name);
    auto source = open();
    REQUIRE_MESSAGE(source.ok(), (source.ok() ? "" : source.error().message));
    auto weights = runner::bind_weights(**source);
    REQUIRE_MESSAGE(weights.ok(), (weights.ok() ? "" : weights.error().message));
    runner::Transformer model(**source, std::move(weights).value(), 128, 2);

    test_support::check_reference_logits(model, ref, logits_tolerance);

    // 32 greedy tokens from a fresh start.
    const auto prompt = ref["prompt_ids"].get<std::vector<std::int32_t>>();
    const auto greedy = ref["greedy_ids"].get<std::vector<std::int32_t>>();
    runner::Transformer fresh(**source, std::move(runner::bind_weights(**source)).value(), 128, 2);
    runner::SamplingParams params;
    params.temperature = 0;
    runner::Sampler sampler(params);
    runner::KvSequence sequence(fresh);
    const auto result = runner::generate(sequence, prompt, static_cast<int>(greedy.size()), sampler, {}, nullptr);
    REQUIRE(result.ok());
    CHECK(result->ids.size() == greedy.size());
    CHECK(std::vector(result->ids.begin(), result->ids.begin() + comparable_steps(ref)) ==
          std::vector(greedy.begin(), greedy.begin() + comparable_steps(ref)));
    CHECK(result->reason == runner::StopReason::length);
}

void check_model(const std::string& name) {
    const auto ref = nlohmann::json::parse(test_support::read_file(models / name / "reference.json"));
    check_source(name, ref, [&] { return runner::open_hf_folder(models / name); });
}

// With f32 activations the products are exact up to summation order: the reference's tolerance holds.
void check_gguf(const std::string& name) {
    const test_support::F32Products f32_products;
    const auto refs = nlohmann::json::parse(test_support::read_file(gguf_models / "reference.json"));
    check_source(name, refs.at(name), [&] { return runner::open_gguf_model(gguf_models / (name + ".gguf")); });
}

// The share of a tensor's whole pages that the page cache holds (mincore on a fresh mapping).
double cached_fraction(const runner::TensorView& t) {
    const int fd = ::open(t.file->path().c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const auto size = static_cast<std::size_t>(fs::file_size(t.file->path()));
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    REQUIRE(p != MAP_FAILED);
    const std::size_t page = 4096, first = (t.file_offset + page - 1) / page, last = (t.file_offset + t.bytes) / page;
    REQUIRE(last > first);
    std::vector<unsigned char> vec(last - first);
    REQUIRE(::mincore(static_cast<char*>(p) + first * page, (last - first) * page, vec.data()) == 0);
    ::munmap(p, size);
    return static_cast<double>(std::count_if(vec.begin(), vec.end(), [](unsigned char v) { return v & 1; })) /
           static_cast<double>(vec.size());
}

}  // namespace

TEST_CASE("reference: Llama, GQA 4:1, llama3 rope scaling, bf16") { check_model("llama-gqa4-llama3rope"); }
TEST_CASE("reference: Llama, MHA, tied embeddings, f16") { check_model("llama-mha-tied-f16"); }
TEST_CASE("reference: Mistral, GQA 2:1, f32") { check_model("mistral-gqa2-f32"); }
TEST_CASE("reference: Qwen2 with q/k/v bias, tied embeddings") { check_model("qwen2-bias-tied"); }
TEST_CASE("reference: Qwen3 with q/k norm and an explicit head_dim") { check_model("qwen3-qknorm-headdim"); }
TEST_CASE("reference: a checkpoint sharded over several safetensors files") { check_model("llama-sharded"); }

TEST_CASE("reference: the portable kernels give the same answers as the AVX2 ones") {
    runner::cpu::force_portable(true);
    check_model("qwen3-qknorm-headdim");
    check_model("llama-mha-tied-f16");
    runner::cpu::force_portable(false);
}

TEST_CASE("reference GGUF: Llama in Q4_K_M (Q4_K, Q6_K) with Llama 3.1's rope_freqs") { check_gguf("llama-q4_k_m"); }
TEST_CASE("reference GGUF: Llama in Q8_0, tied embeddings") { check_gguf("llama-q8_0"); }
TEST_CASE("reference GGUF: Llama in Q4_0") { check_gguf("llama-q4_0"); }
TEST_CASE("reference GGUF: Llama in Q5_K") { check_gguf("llama-q5_k"); }
TEST_CASE("reference GGUF: Llama in F16, tied embeddings") { check_gguf("llama-f16"); }
TEST_CASE("reference GGUF: Llama in BF16") { check_gguf("llama-bf16"); }
TEST_CASE("reference GGUF: Qwen2 in Q8_0 with q/k/v biases") { check_gguf("qwen2-q8_0"); }
TEST_CASE("reference GGUF: Qwen3 in Q6_K with q/k norms") { check_gguf("qwen3-q6_k"); }

TEST_CASE("reference GGUF: products on 8-bit activations (the default) stay near the reference") {
    // Quantized rows take 8-bit activations, in the prompt and in every decode step. On these tiny random
    // models that moves the logits by 1.6-4.4% (RMS, relative), measured when the integer products came; a
    // wrong block layout or scale moves them by 100%. F16 and BF16 rows never take 8-bit activations.
    const auto refs = nlohmann::json::parse(test_support::read_file(gguf_models / "reference.json"));
    for (const auto& [name, ref] : refs.items()) {
        CAPTURE(name);
        const bool quantized = name != "llama-f16" && name != "llama-bf16";
        auto source = runner::open_gguf_model(gguf_models / (name + ".gguf"));
        REQUIRE(source.ok());
        runner::Transformer model(**source, std::move(runner::bind_weights(**source)).value(), 128, 2);
        test_support::for_each_reference_step(model, ref, [&](std::size_t step, std::span<const float> logits) {
            const auto want = ref["logits"][step].get<std::vector<float>>();
            double error = 0, norm = 0;
            for (std::size_t i = 0; i < want.size(); ++i) {
                error += std::pow(double(logits[i]) - want[i], 2);
                norm += double(want[i]) * want[i];
            }
            const double relative = std::sqrt(error / norm);
            CHECK(relative < 0.06);
            if (quantized) CHECK(relative > 1e-4);  // the 8-bit path ran
            if (!quantized) CHECK(test_support::max_abs_diff(logits, ref["logits"][step]) < tolerance);
        });
    }
}

// The default path against tools/reference/make_gguf_int8_reference.py: the same float64 numpy pass,
// each quantized product's input rounded to 8 bits as the engine rounds it. Five of the six models agree
// to 1e-6; in llama-q5_k one activation lies 5e-5 of a step from a rounding boundary in the last
// decode step, where the reference's float64 and the engine's float32 fall on either side, and the
// logits move by 0.016. The greedy tokens are equal up to the first tie (comparable_steps).
void check_gguf_int8(const std::string& name) {
    const auto refs = nlohmann::json::parse(test_support::read_file(gguf_models / "reference-int8.json"));
    check_source(
        name, refs.at(name), [&] { return runner::open_gguf_model(gguf_models / (name + ".gguf")); }, 0.05f);
}

TEST_CASE("reference GGUF, 8-bit activations: Llama in Q4_K_M") { check_gguf_int8("llama-q4_k_m"); }
TEST_CASE("reference GGUF, 8-bit activations: Llama in Q8_0") { check_gguf_int8("llama-q8_0"); }
TEST_CASE("reference GGUF, 8-bit activations: Llama in Q4_0") { check_gguf_int8("llama-q4_0"); }
TEST_CASE("reference GGUF, 8-bit activations: Llama in Q5_K") { check_gguf_int8("llama-q5_k"); }
TEST_CASE("reference GGUF, 8-bit activations: Qwen2 in Q8_0") { check_gguf_int8("qwen2-q8_0"); }
TEST_CASE("reference GGUF, 8-bit activations: Qwen3 in Q6_K") { check_gguf_int8("qwen3-q6_k"); }

TEST_CASE("reference GGUF: the portable kernels give the same answers as the AVX2 ones") {
    runner::cpu::force_portable(true);
    check_gguf("llama-q4_k_m");
    check_gguf("llama-bf16");
    check_gguf_int8("llama-q4_k_m");
    runner::cpu::force_portable(false);
}

TEST_CASE("a token outside the vocabulary or past the context is an error, not a crash") {
    auto source = runner::open_hf_folder(models / "llama-sharded");
    REQUIRE(source.ok());
    runner::Transformer model(**source, std::move(runner::bind_weights(**source)).value(), 8, 1);
    const std::int32_t bad[] = {384};
    const auto r = model.forward(bad, 0);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("outside the vocabulary of 384") != std::string::npos);
    const std::int32_t nine[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const auto full = model.forward(nine, 0);
    REQUIRE_FALSE(full.ok());
    CHECK(full.error().message.find("context full") != std::string::npos);
}

TEST_CASE("reference: streaming layers under a RAM budget gives the same logits and tokens") {
    const std::string name = "llama-gqa4-llama3rope";
    const auto ref = nlohmann::json::parse(test_support::read_file(models / name / "reference.json"));
    // A private copy, written back and dropped from the page cache first: POSIX_FADV_DONTNEED is
    // best effort, and skips dirty pages, pages another process maps (a test beside this one) and
    // freshly written pages still queued for the LRU lists, all of which a fresh clone has.
    test_support::TempTree tree;
    tree.copy(models / name, "m");
    {
        const int fd = ::open((tree.root() / "m/model.safetensors").c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::fdatasync(fd) == 0);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
    auto source = runner::open_hf_folder(tree.root() / "m");
    REQUIRE(source.ok());
    auto weights = std::move(runner::bind_weights(**source)).value();
    // Room for the embeddings, the output head and one layer: the other two are streamed.
    const std::size_t budget = runner::plan_layers(weights, 0).resident_bytes - 2 * weights.layers[0].bytes();
    auto plan = runner::plan_layers(weights, budget);
    CHECK(plan.resident == std::vector<bool>{true, false, false});
    CHECK(plan.streamed_bytes == weights.layers[1].bytes() + weights.layers[2].bytes());
    runner::Transformer model(**source, std::move(weights), 128, 2, plan);

    const auto prompt = ref["prompt_ids"].get<std::vector<std::int32_t>>();
    runner::SamplingParams params;
    params.temperature = 0;
    runner::Sampler sampler(params);
    const auto greedy = ref["greedy_ids"].get<std::vector<std::int32_t>>();
    runner::KvSequence sequence(model);
    const auto result = runner::generate(sequence, prompt, static_cast<int>(greedy.size()), sampler, {}, nullptr);
    REQUIRE(result.ok());
    CHECK(result->ids == greedy);
    // One pass for the prompt and one per decoded token but the last, each streaming the two layers.
    CHECK(model.stream_stats().passes == greedy.size());
    CHECK(model.stream_stats().bytes_streamed == greedy.size() * plan.streamed_bytes);
    // Released after use: the streamed layer's weights left the page cache (its edge pages may be
    // shared with neighbouring tensors, so whole inner pages are what is checked).
    auto again = std::move(runner::bind_weights(**source)).value();
    const runner::TensorView& w_up = *again.layers[2].w_up;
    CHECK(cached_fraction(w_up) < 0.5);
}
