// gguf_model_config on headers written by the gguf package with llama.cpp's key names
// (tools/reference/make_gguf_fixtures.py: Llama 3.1 8B's and Qwen3 8B's settings), and on those headers
// changed one key at a time into something the engine cannot run.
#include <doctest/doctest.h>

#include <filesystem>

#include "runner/model/gguf_config.h"

namespace fs = std::filesystem;

namespace {

runner::GgufHeader header(const char* name) {
    auto file = runner::GgufFile::open(fs::path(OAR_FIXTURES) / "gguf" / name);
    REQUIRE_MESSAGE(file.ok(), (file.ok() ? "" : file.error().message));
    return file->header();
}

runner::GgufValue integer(runner::GgufType type, std::int64_t v) {
    runner::GgufValue value;
    value.type = type;
    value.integers = {v};
    return value;
}

runner::GgufValue text(const std::string& s) {
    runner::GgufValue value;
    value.type = runner::GgufType::string;
    value.strings = {s};
    return value;
}

std::string config_error(const runner::GgufHeader& h) {
    const auto c = runner::gguf_model_config(h, "m.gguf");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.rfind("m.gguf: ", 0) == 0);
    return c.error().message.substr(8);
}

}  // namespace

TEST_CASE("gguf config: Llama 3.1 8B's and Qwen3 8B's settings as llama.cpp writes them") {
    const auto llama = runner::gguf_model_config(header("llama3-config.gguf"), "llama3-config.gguf");
    REQUIRE_MESSAGE(llama.ok(), (llama.ok() ? "" : llama.error().message));
    CHECK(std::string(llama->arch.name) == "LlamaForCausalLM");
    CHECK(llama->n_embd == 4096);
    CHECK(llama->n_layer == 32);
    CHECK(llama->n_head == 32);
    CHECK(llama->n_head_kv == 8);
    CHECK(llama->head_dim == 128);
    CHECK(llama->n_ff == 14336);
    CHECK(llama->max_position == 131072);
    CHECK(llama->rope_theta == 500000.f);
    CHECK(llama->rms_eps == doctest::Approx(1e-5f));
    CHECK(llama->n_vocab == 16);
    CHECK(llama->bos_id == 0);
    CHECK(llama->eos_ids == std::vector<std::int32_t>{9, 11});  // end of text and end of turn
    CHECK(llama->tie_embeddings);                               // no output.weight

    const auto qwen = runner::gguf_model_config(header("qwen3-config.gguf"), "qwen3-config.gguf");
    REQUIRE_MESSAGE(qwen.ok(), (qwen.ok() ? "" : qwen.error().message));
    CHECK(std::string(qwen->arch.name) == "Qwen3ForCausalLM");
    CHECK(qwen->arch.qk_norm);
    CHECK(qwen->n_layer == 36);
    CHECK(qwen->head_dim == 128);
    CHECK(qwen->n_ff == 12288);
    CHECK(qwen->max_position == 40960);
    CHECK(qwen->rope_theta == 1000000.f);
    CHECK(qwen->rms_eps == doctest::Approx(1e-6f));
    CHECK(qwen->eos_ids == std::vector<std::int32_t>{15});
    CHECK(qwen->bos_id == -1);
    CHECK_FALSE(qwen->tie_embeddings);
}

TEST_CASE("gguf config: what the engine cannot run is an error naming the key") {
    const auto base = header("llama3-config.gguf");
    using T = runner::GgufType;
    {
        auto h = base;
        h.metadata.erase("llama.embedding_length");
        CHECK(config_error(h) == "missing llama.embedding_length");
    }
    {
        auto h = base;
        h.metadata["general.architecture"] = text("gemma3");
        CHECK(config_error(h) == "architecture gemma3 is not supported (supported: llama, qwen2, qwen3)");
    }
    {
        auto h = base;
        h.metadata.erase("general.architecture");
        CHECK(config_error(h) == "no general.architecture");
    }
    {
        auto h = base;
        h.metadata["llama.attention.head_count_kv"] = integer(T::uint32, 7);
        CHECK(config_error(h) == "llama.attention.head_count is not a multiple of attention.head_count_kv");
    }
    {
        auto h = base;
        h.metadata["llama.context_length"] = text("lots");
        CHECK(config_error(h) == "llama.context_length is not an integer");
    }
    {
        auto h = base;
        h.metadata["llama.block_count"] = integer(T::int32, -3);
        CHECK(config_error(h) == "llama.block_count must be a positive integer");
    }
    {
        auto h = base;
        h.metadata["llama.rope.scaling.type"] = text("yarn");
        CHECK(config_error(h) == "rope scaling yarn is not supported");
    }
    {
        auto h = base;
        h.metadata["llama.rope.dimension_count"] = integer(T::uint32, 64);
        CHECK(config_error(h) == "llama.rope.dimension_count is 64: RoPE over part of a head is not supported");
    }
    {
        auto h = base;
        h.metadata["llama.attention.value_length"] = integer(T::uint32, 64);
        CHECK(config_error(h) ==
              "llama.attention.value_length differs from the key length, which these architectures never do");
    }
    {
        auto h = base;
        h.metadata.erase("tokenizer.ggml.tokens");
        CHECK(config_error(h) == "no tokenizer.ggml.tokens or llama.vocab_size: the vocabulary's size is unknown");
        h.metadata["llama.vocab_size"] = integer(T::uint32, 128256);
        const auto c = runner::gguf_model_config(h, "m.gguf");
        REQUIRE(c.ok());
        CHECK(c->n_vocab == 128256);
    }
    {
        auto h = base;
        h.metadata["llama.attention.layer_norm_rms_epsilon"].reals = {0};
        CHECK(config_error(h) == "llama.attention.layer_norm_rms_epsilon must be in (0, 1)");
    }
}
