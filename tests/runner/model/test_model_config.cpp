#include <doctest/doctest.h>

#include <cmath>

#include "runner/engine/transformer.h"
#include "runner/model/model_config.h"

namespace {

const std::string base = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "eos_token_id": 2)";

}  // namespace

TEST_CASE("config.json: derived head_dim, GQA, EOS from generation_config.json") {
    const auto c = runner::parse_model_config(base + "}", "config.json", R"({"eos_token_id": [2, 7]})");
    REQUIRE(c.ok());
    CHECK(c->head_dim == 16);
    CHECK(c->n_head_kv == 2);
    CHECK(c->eos_ids == std::vector<std::int32_t>{2, 7});
    CHECK(c->rope_scaling.type.empty());
}

TEST_CASE("rope scaling in both transformers 4 (rope_scaling) and 5 (rope_parameters) spellings") {
    const auto v4 = runner::parse_model_config(
        base + R"(, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})",
        "config.json", "");
    const auto v5 = runner::parse_model_config(
        base + R"(, "rope_parameters": {"rope_type": "llama3", "factor": 32.0, "rope_theta": 500000.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})",
        "config.json", "");
    REQUIRE(v4.ok());
    REQUIRE(v5.ok());
    for (const auto* c : {&*v4, &*v5}) {
        CHECK(c->rope_theta == 500000.0f);
        CHECK(c->rope_scaling.type == "llama3");
        CHECK(c->rope_scaling.factor == 32.0f);
    }
    // Llama 3.1's scaling leaves high frequencies alone and divides the lowest by the factor.
    const auto inv = runner::rope_inv_freq(*v4);
    CHECK(inv[0] == doctest::Approx(1.0f));
    const float unscaled_last = 1.0f / std::pow(500000.0f, 14.0f / 16.0f);
    CHECK(inv[7] == doctest::Approx(unscaled_last / 32.0f));
}

TEST_CASE("bad config values are errors naming the field") {
    const struct {
        std::string text;
        const char* expect;
    } rows[] = {
        {"{", "config.json: not valid JSON"},
        {R"({"architectures": ["BertModel"]})",
         "architecture BertModel is not supported (supported: LlamaForCausalLM, MistralForCausalLM"},
        {R"({"hidden_size": 64})", "no \"architectures\" list"},
        {base + R"(, "num_hidden_layers": 0})", "\"num_hidden_layers\" must be a positive integer"},
        {base + R"(, "num_key_value_heads": 3})", "num_attention_heads is not a multiple of num_key_value_heads"},
        {base + R"(, "rope_scaling": {"rope_type": "yarn"}})", "rope scaling type 'yarn' is not supported"},
        {base + R"(, "rms_norm_eps": 0})", "rms_norm_eps must be in (0, 1)"},
        // Of the wrong JSON type: nlohmann's value() threw a message naming neither key nor file.
        {base + R"(, "tie_word_embeddings": "yes"})", "config.json: \"tie_word_embeddings\" must be true or false"},
        {base + R"(, "rope_scaling": {"rope_type": 5}})", "config.json: rope scaling \"rope_type\" must be a string"},
        {base + R"(, "rope_parameters": {"rope_type": "llama3", "factor": "8"}})",
         "config.json: rope scaling \"factor\" must be a number"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        const auto c = runner::parse_model_config(row.text, "config.json", "");
        REQUIRE_FALSE(c.ok());
        CHECK(c.error().message.find(row.expect) != std::string::npos);
    }
}
