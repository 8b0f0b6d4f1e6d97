#include "runner/tokenizer/gguf_vocab.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>

#include "runner/tokenizer/gguf_token_type.h"
#include "runner/tokenizer/spm_merges.h"
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

using Bad = std::function<common::Error(const std::string&)>;

// The vocabulary and added tokens of tokenizer.json from tokenizer.ggml.tokens and token_type, checked.
struct Vocabulary {
    const runner::GgufValue* tokens = nullptr;
    std::vector<std::int64_t> types;
    nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
};

common::Result<Vocabulary> read_vocabulary(const runner::GgufHeader& h, const Bad& bad) {
    Vocabulary v;
    v.tokens = h.find("tokenizer.ggml.tokens");
    if (!v.tokens || !v.tokens->is_array || v.tokens->type != runner::GgufType::string || v.tokens->strings.empty())
        return bad("tokenizer.ggml.tokens is not an array of strings");
    const auto& strings = v.tokens->strings;
    const auto* types = h.find("tokenizer.ggml.token_type");
    if (types && (!types->is_array || types->integers.size() != strings.size()))
        return bad("tokenizer.ggml.token_type does not give one type per token");
    v.types = types ? types->integers : std::vector<std::int64_t>(strings.size(), gguf_token_type::normal);
    // A vocabulary is text (byte-level BPE spells bytes as printable characters, SentencePiece as <0xNN>):
    // bytes that are not UTF-8 are a broken file, not something to pass on.
    for (std::size_t i = 0; i < strings.size(); ++i)
        if (!utf8_is_valid(strings[i]))
            return bad("tokenizer.ggml.tokens[" + std::to_string(i) + "] is not valid UTF-8");
    for (std::size_t id = 0; id < strings.size(); ++id) {
        const auto& token = strings[id];
        if (v.vocab.contains(token))
            return bad("tokenizer.ggml.tokens holds \"" + token + "\" twice (ids " +
                       std::to_string(v.vocab[token].get<std::size_t>()) + " and " + std::to_string(id) + ")");
        v.vocab[token] = id;
        // llama.cpp matches CONTROL, UNKNOWN and USER_DEFINED tokens in text as they are, the first two as
        // special tokens (SentencePiece's <unk> is one).
        const std::int64_t type = v.types[id];
        if (type == gguf_token_type::control || type == gguf_token_type::unknown ||
            type == gguf_token_type::user_defined)
            v.added.push_back({{"id", id},
                               {"content", token},
                               {"special", type != gguf_token_type::user_defined},
                               {"normalized", false},
                               {"lstrip", false},
                               {"rstrip", false},
                               {"single_word", false}});
    }
    return v;
}

// Byte-level BPE (tokenizer.ggml.model "gpt2"): the merges as written, the pre-tokenizer by name.
common::Result<nlohmann::json> byte_level_json(const runner::GgufHeader& h, Vocabulary& v, const Bad& bad) {
    const std::string pre_name = h.string("tokenizer.ggml.pre").value_or("default");
    const PreTokenizer* pre = nullptr;
    for (const auto& p : pre_tokenizers)
        if (pre_name == p.name) pre = &p;
    if (!pre) {
        std::string known;
        for (const auto& p : pre_tokenizers) known += std::string(known.empty() ? "" : ", ") + p.name;
        return bad("tokenizer.ggml.pre \"" + pre_name + "\" is not a pre-tokenizer the runner knows (" + known + ")");
    }
    const auto* merges = h.find("tokenizer.ggml.merges");
    if (!merges || !merges->is_array || merges->type != runner::GgufType::string)
        return bad("tokenizer.ggml.merges is not an array of strings");
    for (std::size_t i = 0; i < merges->strings.size(); ++i)
        if (!utf8_is_valid(merges->strings[i]))
            return bad("tokenizer.ggml.merges[" + std::to_string(i) + "] is not valid UTF-8");
    nlohmann::json j;
    j["normalizer"] = nullptr;
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
                  {"vocab", std::move(v.vocab)},
                  {"merges", merges->strings},
                  {"byte_fallback", false},
                  {"ignore_merges", pre->ignore_merges}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    return j;
}

// SentencePiece BPE (tokenizer.ggml.model "llama"): merges from the scores (spm_merges.h), spaces as ▁ with
// one in front of the text unless tokenizer.ggml.add_space_prefix says not, unknown bytes as <0xNN> tokens:
// the tokenizer.json Hugging Face writes for Llama 2 and Mistral 7B.
common::Result<nlohmann::json> sentencepiece_json(const runner::GgufHeader& h, Vocabulary& v, const Bad& bad) {
    const auto& pieces = v.tokens->strings;
    const auto* scores = h.find("tokenizer.ggml.scores");
    if (!scores || !scores->is_array || scores->reals.size() != pieces.size())
        return bad("tokenizer.ggml.scores does not give one score per token (a SentencePiece vocabulary needs them)");
    // A NaN would leave the ranking of the merges without an order (and std::sort without a defined result).
    for (std::size_t i = 0; i < scores->reals.size(); ++i)
        if (!std::isfinite(scores->reals[i]))
            return bad("tokenizer.ggml.scores[" + std::to_string(i) + "] is not a finite number");
    std::string unk;
    if (const auto id = h.integer("tokenizer.ggml.unknown_token_id")) {
        if (*id < 0 || static_cast<std::size_t>(*id) >= pieces.size())
            return bad("tokenizer.ggml.unknown_token_id names no token");
        unk = pieces[static_cast<std::size_t>(*id)];
    } else if (const auto it = std::find(v.types.begin(), v.types.end(), gguf_token_type::unknown);
               it != v.types.end()) {
        unk = pieces[static_cast<std::size_t>(it - v.types.begin())];
    }
    const bool space_prefix = h.integer("tokenizer.ggml.add_space_prefix").value_or(1) != 0;
    const std::string space = "\u2581";
    nlohmann::json normalizers = nlohmann::json::array();
    if (space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", space}});
    normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}});
    nlohmann::json decoders = {{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
                               {{"type", "ByteFallback"}},
                               {{"type", "Fuse"}}};
    if (space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    nlohmann::json merges = nlohmann::json::array();
    for (auto& [left, right] : spm_merges(pieces, scores->reals, v.types)) merges.push_back({left, right});
    nlohmann::json j;
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
    j["pre_tokenizer"] = nullptr;
    j["model"] = {{"type", "BPE"},
                  {"vocab", std::move(v.vocab)},
                  {"merges", std::move(merges)},
                  {"byte_fallback", true},
                  {"fuse_unk", true},
                  {"unk_token", unk.empty() ? nlohmann::json(nullptr) : nlohmann::json(unk)}};
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    return j;
}

}  // namespace

common::Result<std::string> gguf_tokenizer_json(const runner::GgufHeader& h, const std::string& file) {
    const Bad bad = [&](const std::string& why) { return common::make_error(file + ": " + why); };
    const auto model = h.string("tokenizer.ggml.model");
    if (!model) return bad("no tokenizer.ggml.model: the file has no tokenizer (give the prompt as ids)");
    const bool sentencepiece = *model == "llama";
    if (*model != "gpt2" && !sentencepiece)
        return bad("tokenizer.ggml.model is \"" + *model +
                   "\": only byte-level BPE (\"gpt2\": Llama 3, Qwen) and SentencePiece BPE (\"llama\": Llama 2, "
                   "Mistral) vocabularies are supported");
    auto vocabulary = read_vocabulary(h, bad);
    if (!vocabulary) return vocabulary.error();
    auto built = sentencepiece ? sentencepiece_json(h, *vocabulary, bad) : byte_level_json(h, *vocabulary, bad);
    if (!built) return built.error();
    nlohmann::json j = std::move(built).value();
    j["version"] = "1.0";
    j["added_tokens"] = std::move(vocabulary->added);

    // BOS before the text where the file says so; without the key, llama.cpp adds one for SentencePiece
    // vocabularies and none for byte-level BPE.
    const auto& tokens = vocabulary->tokens->strings;
    const auto bos = h.integer("tokenizer.ggml.bos_token_id");
    const bool add_bos = h.integer("tokenizer.ggml.add_bos_token").value_or(sentencepiece ? 1 : 0) != 0;
    if (add_bos) {
        if (!bos || *bos < 0 || static_cast<std::size_t>(*bos) >= tokens.size())
            return bad("tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id names no token");
        const std::string& name = tokens[static_cast<std::size_t>(*bos)];
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
