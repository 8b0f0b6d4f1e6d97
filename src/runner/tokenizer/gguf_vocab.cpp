#include "runner/tokenizer/gguf_vocab.h"

#include <nlohmann/json.hpp>

#include <array>

#include "runner/tokenizer/utf8.h"

namespace tokenizer {

namespace {

// What llama.cpp's llama-vocab.cpp splits text with for each tokenizer.ggml.pre, in Hugging Face's
// Split pre-tokenizer form; "" for GPT-2's own ByteLevel split. ignore_merges: whole words found in the
// vocabulary are taken as they are (Llama 3's tokenizer.json says so; llama.cpp does the same for it).
struct PreTokenizer {
    const char* name;
    const char* pattern;
    bool ignore_merges;
};

constexpr const char* llama3_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* qwen2_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::array pre_tokenizers = {
    PreTokenizer{"llama-bpe", llama3_pattern, true},
    PreTokenizer{"llama3", llama3_pattern, true},
    PreTokenizer{"qwen2", qwen2_pattern, false},
    PreTokenizer{"deepseek-r1-qwen", qwen2_pattern, false},
    PreTokenizer{"default", "", false},
    PreTokenizer{"gpt-2", "", false},
};

// llama.cpp's token types (llama_token_type): CONTROL tokens are special; USER_DEFINED ones are matched in
// text as they are but are not special.
constexpr std::int64_t type_control = 3, type_user_defined = 4;

}  // namespace

common::Result<std::string> gguf_tokenizer_json(const runner::GgufHeader& h, const std::string& file) {
    const auto bad = [&](const std::string& why) { return common::make_error(file + ": " + why); };
    const auto model = h.string("tokenizer.ggml.model");
    if (!model) return bad("no tokenizer.ggml.model: the file has no tokenizer (give the prompt as ids)");
    if (*model != "gpt2")
        return bad("tokenizer.ggml.model is \"" + *model +
                   "\": only byte-level BPE vocabularies (\"gpt2\": Llama 3, Qwen) are supported, not SentencePiece's");
    const std::string pre_name = h.string("tokenizer.ggml.pre").value_or("default");
    const PreTokenizer* pre = nullptr;
    for (const auto& p : pre_tokenizers)
        if (pre_name == p.name) pre = &p;
    if (!pre) {
        std::string known;
        for (const auto& p : pre_tokenizers) known += std::string(known.empty() ? "" : ", ") + p.name;
        return bad("tokenizer.ggml.pre \"" + pre_name + "\" is not a pre-tokenizer the runner knows (" + known + ")");
    }
    const auto* tokens = h.find("tokenizer.ggml.tokens");
    if (!tokens || !tokens->is_array || tokens->type != runner::GgufType::string || tokens->strings.empty())
        return bad("tokenizer.ggml.tokens is not an array of strings");
    const auto* merges = h.find("tokenizer.ggml.merges");
    if (!merges || !merges->is_array || merges->type != runner::GgufType::string)
        return bad("tokenizer.ggml.merges is not an array of strings");
    const auto* types = h.find("tokenizer.ggml.token_type");
    if (types && (!types->is_array || types->integers.size() != tokens->strings.size()))
        return bad("tokenizer.ggml.token_type does not give one type per token");
    // A vocabulary is text (byte-level BPE spells bytes as printable characters): bytes that are not UTF-8
    // are a broken file, not something to pass on.
    for (const auto* list : {tokens, merges})
        for (std::size_t i = 0; i < list->strings.size(); ++i)
            if (!utf8_is_valid(list->strings[i]))
                return bad(std::string(list == tokens ? "tokenizer.ggml.tokens" : "tokenizer.ggml.merges") + "[" +
                           std::to_string(i) + "] is not valid UTF-8");

    nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
    for (std::size_t id = 0; id < tokens->strings.size(); ++id) {
        const auto& token = tokens->strings[id];
        if (vocab.contains(token))
            return bad("tokenizer.ggml.tokens holds \"" + token + "\" twice (ids " +
                       std::to_string(vocab[token].get<std::size_t>()) + " and " + std::to_string(id) + ")");
        vocab[token] = id;
        const std::int64_t type = types ? types->integers[id] : 1;
        if (type == type_control || type == type_user_defined)
            added.push_back({{"id", id},
                             {"content", token},
                             {"special", type == type_control},
                             {"normalized", false},
                             {"lstrip", false},
                             {"rstrip", false},
                             {"single_word", false}});
    }
    nlohmann::json j;
    j["version"] = "1.0";
    j["normalizer"] = nullptr;
    j["added_tokens"] = added;
    const nlohmann::json byte_level = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", !*pre->pattern}};
    if (*pre->pattern)
        j["pre_tokenizer"] = {
            {"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", pre->pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
              byte_level}}};
    else
        j["pre_tokenizer"] = byte_level;
    j["model"] = {{"type", "BPE"},
                  {"vocab", vocab},
                  {"merges", merges->strings},
                  {"byte_fallback", false},
                  {"ignore_merges", pre->ignore_merges}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};

    // BOS before the text where the file says so (llama.cpp's default for BPE vocabularies: no).
    const auto bos = h.integer("tokenizer.ggml.bos_token_id");
    const auto add_bos = h.integer("tokenizer.ggml.add_bos_token");
    if (add_bos && *add_bos) {
        if (!bos || *bos < 0 || static_cast<std::size_t>(*bos) >= tokens->strings.size())
            return bad("tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id names no token");
        const std::string& name = tokens->strings[static_cast<std::size_t>(*bos)];
        j["post_processor"] = {
            {"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", name}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", name}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{name, {{"id", name}, {"ids", {*bos}}, {"tokens", {name}}}}}}};
    } else {
        j["post_processor"] = nullptr;
    }
    return j.dump();
}

common::Result<Tokenizer> load_gguf_tokenizer(const runner::GgufHeader& h, const std::string& file) {
    auto json = gguf_tokenizer_json(h, file);
    if (!json) return json.error();
    return Tokenizer::parse(*json, file + " (tokenizer.ggml.*)");
}

}  // namespace tokenizer
