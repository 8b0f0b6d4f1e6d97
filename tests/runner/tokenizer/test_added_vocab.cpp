// Added tokens: longest match first, the lstrip / rstrip / single_word flags, normalized matching.
#include <doctest/doctest.h>

#include "tokenizer/tiny.h"

using namespace test_tokenizer;
using Ids = std::vector<tokenizer::TokenId>;

namespace {

nlohmann::json added(const char* content, int id, nlohmann::json flags = nlohmann::json::object()) {
    nlohmann::json t = {{"id", id},        {"content", content},   {"special", true},    {"lstrip", false},
                        {"rstrip", false}, {"single_word", false}, {"normalized", false}};
    if (flags.is_object()) t.update(flags);
    return t;
}

}  // namespace

TEST_CASE("tokenizer added tokens: matched before the model, longest first") {
    auto j = tiny_json();
    j["added_tokens"] = {added("<s>", 20), added("<s><s>", 21), added("d", 22)};
    const auto tok = tiny(j);
    CHECK(tok.encode("a<s>b", false) == Ids{1, 20, 2});
    CHECK(tok.encode("<s><s><s>", false) == Ids{21, 20});
    CHECK(tok.encode("cd", false) == Ids{3, 22});    // "d" is taken before "c d" could merge
    CHECK(*tok.decode(Ids{1, 20, 2}) == "a <s> b");  // no decoder: tokens joined with spaces
    CHECK(*tok.decode(Ids{1, 20, 2}, true) == "a b");
}

TEST_CASE("tokenizer added tokens: lstrip, rstrip and single_word flags") {
    const struct {
        nlohmann::json flags;
        const char* text;
        Ids ids;
    } rows[] = {
        {{}, "a <s> b", {1, 12, 20, 12, 2}},
        {{{"lstrip", true}}, "a  <s> b", {1, 20, 12, 2}},
        {{{"rstrip", true}}, "a <s>  b", {1, 12, 20, 2}},
        {{{"lstrip", true}, {"rstrip", true}}, "a <s> b", {1, 20, 2}},
        {{{"single_word", true}}, "a<s>b", {1, 0, 0, 0, 2}},  // inside a word: not the token ("<", "s", ">" are unk)
        {{{"single_word", true}}, "a <s> b", {1, 12, 20, 12, 2}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.flags.dump());
        CAPTURE(row.text);
        auto j = tiny_json();
        j["added_tokens"] = {added("<s>", 20, row.flags)};
        CHECK(tiny(j).encode(row.text, false) == row.ids);
    }
}

TEST_CASE("tokenizer added tokens: normalized tokens are matched in the normalized text") {
    auto j = tiny_json();
    j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "x"}}}, {"content", "e"}};
    j["added_tokens"] = {added("ee", 30, {{"normalized", true}, {"special", false}}), added("xx", 31)};
    const auto tok = tiny(j);
    CHECK(tok.encode("axeb", false) == Ids{1, 30, 2});  // x→e, then "ee" matches
    CHECK(tok.encode("axxb", false) == Ids{1, 31, 2});  // the raw token wins before normalization
}
