// The streaming decoder on hand-made byte splits (the corpus runs are in test_conformance.cpp).
#include <doctest/doctest.h>

#include "runner/tokenizer/stream_decoder.h"
#include "tokenizer/corpus.h"

using namespace test_tokenizer;

TEST_CASE("tokenizer stream: a character split over byte tokens comes out whole") {
    auto tok = tokenizer::Tokenizer::load(model_dir("llama2") / "tokenizer.json",
                                          model_dir("llama2") / "tokenizer_config.json");
    REQUIRE(tok.ok());
    // "日" spelled as three <0xNN> tokens after "▁a".
    std::vector<tokenizer::TokenId> ids = {*tok->token_to_id("▁a"), *tok->token_to_id("<0xE6>"),
                                           *tok->token_to_id("<0x97>"), *tok->token_to_id("<0xA5>")};
    tokenizer::StreamDecoder stream(*tok);
    std::vector<std::string> out;
    for (const auto id : ids) out.push_back(*stream.push(id));
    CHECK(out == std::vector<std::string>{"a", "", "", "日"});
    // An incomplete character at the end comes out as U+FFFD on flush.
    CHECK(*stream.push(ids[1]) == "");
    CHECK(*stream.flush() == "\xEF\xBF\xBD");
    // An id outside the vocabulary is an error, and the stream goes on.
    CHECK_FALSE(stream.push(1 << 30).ok());
    CHECK(*stream.push(ids[0]) == "a");
}
