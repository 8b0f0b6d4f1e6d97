// Split behaviours, the \s translation for PCRE2, and the pre-tokenizers on small inputs.
#include <doctest/doctest.h>

#include "runner/tokenizer/pre_tokenizer.h"
#include "runner/tokenizer/regex.h"

using namespace tokenizer;

namespace {

std::vector<std::string> pieces_of(const nlohmann::json& config, const std::string& text) {
    const auto pre = parse_pre_tokenizer(JsonView(config, "pre_tokenizer"));
    std::vector<Piece> pieces{{text, true}};
    pre->pre_tokenize(pieces);
    std::vector<std::string> out;
    for (auto& p : pieces) out.push_back(p.text);
    return out;
}

}  // namespace

TEST_CASE("tokenizer pre-tokenizer: Split behaviours cut 'a-b--c' as Hugging Face does") {
    using V = std::vector<std::string>;
    const struct {
        const char* behavior;
        bool invert;
        V pieces;
    } rows[] = {
        {"Isolated", false, {"a", "-", "b", "-", "-", "c"}},   {"Removed", false, {"a", "b", "c"}},
        {"MergedWithPrevious", false, {"a-", "b-", "-", "c"}}, {"MergedWithNext", false, {"a", "-b", "-", "-c"}},
        {"Contiguous", false, {"a", "-", "b", "--", "c"}},     {"Removed", true, {"-", "-", "-"}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.behavior);
        CAPTURE(row.invert);
        const nlohmann::json config = {
            {"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", row.behavior}, {"invert", row.invert}};
        CHECK(pieces_of(config, "a-b--c") == row.pieces);
    }
}

TEST_CASE("tokenizer pre-tokenizer: regexes use Unicode classes, (?i:) and lookahead") {
    const nlohmann::json llama3 = {
        {"type", "Split"},
        {"pattern",
         {{"Regex",
           R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
        {"behavior", "Isolated"}};
    using V = std::vector<std::string>;
    CHECK(pieces_of(llama3, "I'LL pay 12345") == V{"I", "'LL", " pay", " ", "123", "45"});
    CHECK(pieces_of(llama3, "a   b") == V{"a", "  ", " b"});
    CHECK(pieces_of(llama3, "日本語 text") == V{"日本語", " text"});
    // U+0085 (NEXT LINE) is white space to Rust's regex; PCRE2 needs the translation for that.
    CHECK(pieces_of(llama3,
                    "a\xC2\x85\xC2\x85"
                    "b") == V{"a", "\xC2\x85",
                              "\xC2\x85"
                              "b"});
    CHECK(translate_pattern(R"(\s+(?!\S)|[^\s\p{L}])") == R"([\s\x{85}]+(?![^\s\x{85}])|[^\s\x{85}\p{L}])");
}

TEST_CASE("tokenizer pre-tokenizer: ByteLevel, Metaspace and Digits") {
    using V = std::vector<std::string>;
    CHECK(pieces_of({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "Hi there\n") ==
          V{"Hi", "Ġthere", "Ċ"});
    CHECK(pieces_of({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}}, "é") == V{"ĠÃ©"});
    CHECK(pieces_of({{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}},
                    "a b") == V{"▁a", "▁b"});
    CHECK(pieces_of({{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "never"}, {"split", false}},
                    "a b") == V{"a▁b"});
    CHECK(pieces_of({{"type", "Digits"}, {"individual_digits", true}}, "x123") == V{"x", "1", "2", "3"});
    CHECK(pieces_of({{"type", "Digits"}, {"individual_digits", false}}, "x123y") == V{"x", "123", "y"});
}
