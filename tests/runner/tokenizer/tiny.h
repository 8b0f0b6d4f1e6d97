// A tiny tokenizer.json built in the test, for unit tests of single behaviours.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runner/tokenizer/tokenizer.h"

namespace test_tokenizer {

// Vocabulary a..e, "ab", "abc", "bc", "cd", "<0x41>" style byte tokens for 'A' and 'B', unk "<unk>".
inline nlohmann::json tiny_json() {
    return nlohmann::json::parse(R"({
      "version": "1.0",
      "added_tokens": [],
      "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
      "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": false,
                "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "ab": 6, "bc": 7, "abc": 8, "cd": 9,
                          "<0x41>": 10, "<0x42>": 11, " ": 12},
                "merges": ["b c", "a b", "ab c", "c d"]}
    })");
}

inline tokenizer::Tokenizer tiny(const nlohmann::json& j) {
    auto t = tokenizer::Tokenizer::parse(j.dump(), "tiny.json");
    if (!t) throw std::runtime_error(t.error().message);
    return std::move(t).value();
}

}  // namespace test_tokenizer
