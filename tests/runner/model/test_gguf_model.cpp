// A GGUF file as the engine's weights: llama.cpp's tensor names mapped to Hugging Face's, and what the
// runner cannot run refused by name (fixtures from tools/reference/make_gguf_fixtures.py).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "runner/model/gguf_model.h"

namespace {

const std::filesystem::path fixtures = std::filesystem::path(OAR_FIXTURES) / "gguf";

std::string error_of(const std::filesystem::path& file) {
    const auto r = runner::open_gguf_model(file);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
}

}  // namespace

TEST_CASE("GGUF model: llama.cpp's tensor names become Hugging Face's, others are not the engine's") {
    const std::pair<const char*, const char*> rows[] = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"},
        {"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"},
        {"blk.31.attn_output.weight", "model.layers.31.self_attn.o_proj.weight"},
        {"blk.7.attn_k.bias", "model.layers.7.self_attn.k_proj.bias"},
        {"blk.2.attn_q_norm.weight", "model.layers.2.self_attn.q_norm.weight"},
        {"blk.12.ffn_norm.weight", "model.layers.12.post_attention_layernorm.weight"},
        {"blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"},
        {"rope_freqs.weight", ""},
        {"blk.x.attn_q.weight", ""},
        {"blk..attn_q.weight", ""},
        {"blk.0.ffn_gate_exps.weight", ""},
        {"blk.0", ""},
    };
    for (const auto& [gguf, hf] : rows) {
        CAPTURE(gguf);
        CHECK(runner::hf_tensor_name(gguf) == hf);
    }
}

TEST_CASE("GGUF model: a tensor type the runner does not run, or a malformed rope_freqs, is refused by name") {
    CHECK(error_of(fixtures / "q5_0-tensor.gguf") ==
          (fixtures / "q5_0-tensor.gguf").string() +
              ": tensor blk.0.attn_q.weight is Q5_0, which the runner does not run (it runs F32, F16, BF16, Q8_0, "
              "Q4_0, Q4_K, Q5_K and Q6_K: Ollama's library serves Q4_K_M and Q8_0)");
    CHECK(error_of(fixtures / "short-rope-freqs.gguf") ==
          (fixtures / "short-rope-freqs.gguf").string() + ": rope_freqs.weight must be 64 F32 values (head_dim / 2)");
    CHECK(runner::is_gguf_file(fixtures / "q5_0-tensor.gguf"));
    CHECK_FALSE(runner::is_gguf_file(fixtures / "expected.json"));
    CHECK_FALSE(runner::is_gguf_file(fixtures / "no-such-file.gguf"));
}
