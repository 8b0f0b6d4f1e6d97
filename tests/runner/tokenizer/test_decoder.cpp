// Decoders on token lists, each against what Hugging Face's decode_chain gives.
#include <doctest/doctest.h>

#include "runner/tokenizer/decoder.h"

using namespace tokenizer;

namespace {

std::string run(const nlohmann::json& config, std::vector<std::string> tokens) {
    const auto decoder = parse_decoder(JsonView(config, "decoder"));
    decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

}  // namespace

TEST_CASE("tokenizer decoder: each decoder type") {
    const nlohmann::json spm = {{"type", "Sequence"},
                                {"decoders",
                                 {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                  {{"type", "ByteFallback"}},
                                  {{"type", "Fuse"}},
                                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
    const struct {
        const char* name;
        nlohmann::json config;
        std::vector<std::string> tokens;
        std::string text;
    } rows[] = {
        {"byte-level", {{"type", "ByteLevel"}}, {"Hello", "Ġworld", "Ċ"}, "Hello world\n"},
        {"byte-level split char", {{"type", "ByteLevel"}}, {"æĹ", "¥"}, "日"},
        {"byte-level incomplete", {{"type", "ByteLevel"}}, {"æĹ"}, "\xEF\xBF\xBD"},
        {"byte-level foreign chars kept", {{"type", "ByteLevel"}}, {"<｜x｜>"}, "<｜x｜>"},
        {"sentencepiece", spm, {"▁Hello", "▁world"}, "Hello world"},
        {"byte fallback", spm, {"▁", "<0xE6>", "<0x97>", "<0xA5>"}, "日"},
        {"byte fallback invalid: one U+FFFD per byte",
         spm,
         {"<0xE6>", "<0x97>", "a"},
         "\xEF\xBF\xBD\xEF\xBF\xBD"
         "a"},
        {"metaspace", {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}}, {"▁a", "▁b"}, "a b"},
        {"strip both ends", {{"type", "Strip"}, {"content", "x"}, {"start", 2}, {"stop", 1}}, {"xxxaxx"}, "xax"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        CHECK(run(row.config, row.tokens) == row.text);
    }
}
