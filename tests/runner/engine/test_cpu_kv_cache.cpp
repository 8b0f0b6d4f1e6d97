// The CPU engine's KV cache grows with the positions used: capacity doubles, never past the context,
// keeps what it holds, and a model asked for Ollama's largest context holds only what it ran.
#include <doctest/doctest.h>

#include <filesystem>

#include "runner/engine/cpu_kv_cache.h"
#include "runner/engine/transformer.h"
#include "runner/model/hf_folder.h"
#include "runner/support/prefix_reuse.h"

namespace fs = std::filesystem;

TEST_CASE("cpu kv cache: capacity doubles from 256 positions, stops at the context, keeps its rows") {
    runner::CpuKvCache cache(2, 3, 1000);
    CHECK(cache.capacity() == 0);
    CHECK(cache.bytes() == 0);
    cache.reserve(10);
    CHECK(cache.capacity() == runner::CpuKvCache::min_positions);
    CHECK(cache.bytes() == 2 * 2 * 256 * 3 * sizeof(float));
    for (int layer = 0; layer < 2; ++layer)
        for (int i = 0; i < 10 * 3; ++i) {
            cache.keys(layer)[i] = static_cast<float>(100 * layer + i);
            cache.values(layer)[i] = -static_cast<float>(100 * layer + i);
        }
    cache.reserve(256);
    CHECK(cache.capacity() == 256);
    cache.reserve(257);
    CHECK(cache.capacity() == 512);
    cache.reserve(600);
    CHECK(cache.capacity() == 1000);
    for (int layer = 0; layer < 2; ++layer)
        for (int i = 0; i < 10 * 3; ++i) {
            CHECK(cache.keys(layer)[i] == static_cast<float>(100 * layer + i));
            CHECK(cache.values(layer)[i] == -static_cast<float>(100 * layer + i));
        }
}

TEST_CASE("cpu kv cache: a 262,144-token context holds what ran, and logits across a growth equal one pass") {
    auto source = runner::open_hf_folder(fs::path(OAR_FIXTURES) / "models/llama-gqa4-llama3rope");
    REQUIRE(source.ok());
    const auto& c = (*source)->config();
    runner::Transformer grown(**source, std::move(runner::bind_weights(**source)).value(), 262144, 2);
    runner::Transformer whole(**source, std::move(runner::bind_weights(**source)).value(), 262144, 2);
    const std::size_t per_position = 2 * static_cast<std::size_t>(c.n_layer) * c.n_head_kv * c.head_dim * sizeof(float);
    CHECK(grown.kv_cache_bytes() == 0);

    std::vector<std::int32_t> prompt;
    for (int i = 0; i < 300; ++i) prompt.push_back((5 + 7 * i) % c.n_vocab);
    // 200 positions, then 100 more: the second pass grows the cache from 256 positions to 512.
    REQUIRE(grown.forward(std::span(prompt).first(200), 0).ok());
    CHECK(grown.kv_cache_bytes() == 256 * per_position);
    const auto in_two = test_support::copy_logits(grown.forward(std::span(prompt).subspan(200), 200));
    CHECK(grown.kv_cache_bytes() == 512 * per_position);
    const auto in_one = test_support::copy_logits(whole.forward(prompt, 0));
    CHECK(test_support::max_abs_diff(in_two, in_one) <= 1e-5f);
    CHECK(whole.kv_cache_bytes() == 300 * per_position);
}
