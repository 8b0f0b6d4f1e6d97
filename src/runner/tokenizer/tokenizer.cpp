#include "runner/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <mutex>

#include "common/regular_file.h"
#include "runner/tokenizer/added_vocab.h"
#include "runner/tokenizer/bpe.h"
#include "runner/tokenizer/byte_level.h"
#include "runner/tokenizer/decoder.h"
#include "runner/tokenizer/json_view.h"
#include "runner/tokenizer/normalizer.h"
#include "runner/tokenizer/post_processor.h"
#include "runner/tokenizer/pre_tokenizer.h"
#include "runner/tokenizer/utf8.h"

namespace tokenizer {

struct Tokenizer::Impl {
    NormalizerPtr normalizer;
    PreTokenizerPtr pre_tokenizer;
    Bpe model;
    AddedVocabulary added;
    SpecialTokenFrame frame;
    DecoderPtr decoder;
    mutable std::once_flag pieces_made;
    mutable std::vector<std::optional<std::string>> pieces;

    Impl(Bpe m) : model(std::move(m)) {}

    std::optional<TokenId> lookup(std::string_view token) const {
        if (const auto* t = added.by_content(token)) return t->id;
        return model.token_to_id(token);
    }
};

namespace {

common::Result<std::string> read_text(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path)) return common::make_error(path.string() + ": cannot open (no such file)");
    return common::read_regular_file(path);
}

common::Result<nlohmann::json> parse_json(std::string_view text, std::string_view name) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        // parse_error: "[json.exception.parse_error.101] parse error at line 1, column 5: ...";
        // out_of_range.406 for numbers like 555e555 (found by the fuzzer).
        std::string what = e.what();
        const auto at = what.find("] ");
        if (at != std::string::npos) what = what.substr(at + 2);
        return common::make_error(std::string(name) + ": not valid JSON: " + what);
    }
}

// bos_token / eos_token in tokenizer_config.json: a string, {"content": ...} or null.
std::optional<std::string> config_token(const JsonView& config, std::string_view key) {
    const auto v = config.find(key);
    if (v.is_null()) return std::nullopt;
    if (v.is_string()) return v.as_string();
    if (v.is_object()) return v.at("content").as_string();
    v.expected("a string, an AddedToken object or null");
}

void apply_config(const JsonView& config, Tokenizer::Impl& impl) {
    if (!config.is_object()) config.expected("an object");
    const auto apply = [&](std::string_view flag, std::string_view token_key, std::vector<TokenId>& target) {
        const auto v = config.find(flag);
        if (v.is_null()) return;  // absent: tokenizer.json's post-processor decides
        target.clear();
        if (!v.as_bool()) return;
        const auto token = config_token(config, token_key);
        if (!token) v.fail("is true but " + std::string(token_key) + " is not set");
        const auto id = impl.lookup(*token);
        if (!id) config.at(token_key).fail("\"" + *token + "\" is not in the vocabulary");
        target.push_back(*id);
    };
    apply("add_bos_token", "bos_token", impl.frame.prefix);
    apply("add_eos_token", "eos_token", impl.frame.suffix);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

common::Result<Tokenizer> Tokenizer::load(const std::filesystem::path& tokenizer_json,
                                          const std::optional<std::filesystem::path>& tokenizer_config) {
    auto text = read_text(tokenizer_json);
    if (!text) return text.error();
    std::string config_text;
    std::string config_name;
    if (tokenizer_config) {
        auto c = read_text(*tokenizer_config);
        if (!c) return c.error();
        config_text = std::move(c).value();
        config_name = tokenizer_config->string();
    }
    return parse(*text, tokenizer_json.string(), config_text, config_name);
}

common::Result<Tokenizer> Tokenizer::parse(std::string_view tokenizer_json, std::string_view json_name,
                                           std::string_view tokenizer_config, std::string_view config_name) {
    auto json = parse_json(tokenizer_json, json_name);
    if (!json) return json.error();
    std::unique_ptr<Impl> impl;
    try {
        const JsonView root(*json, "");
        if (!root.is_object()) root.expected("an object");
        impl = std::make_unique<Impl>(Bpe::parse(root.at("model")));
        impl->normalizer = parse_normalizer(root.find("normalizer"));
        impl->pre_tokenizer = parse_pre_tokenizer(root.find("pre_tokenizer"));
        impl->added = AddedVocabulary::parse(root.find("added_tokens"), impl->normalizer.get());
        impl->frame = parse_post_processor(root.find("post_processor"));
        impl->decoder = parse_decoder(root.find("decoder"));
    } catch (const SchemaError& e) {
        return common::make_error(std::string(json_name) + ": " + e.what());
    } catch (const std::exception& e) {  // nlohmann type errors and allocation failures
        return common::make_error(std::string(json_name) + ": " + e.what());
    }
    if (!tokenizer_config.empty()) {
        auto config = parse_json(tokenizer_config, config_name);
        if (!config) return config.error();
        try {
            apply_config(JsonView(*config, ""), *impl);
        } catch (const SchemaError& e) {
            return common::make_error(std::string(config_name) + ": " + e.what());
        } catch (const std::exception& e) {
            return common::make_error(std::string(config_name) + ": " + e.what());
        }
    }
    return Tokenizer(std::move(impl));
}

std::vector<TokenId> Tokenizer::encode(std::string_view input, bool add_special_tokens) const {
    const Impl& t = *impl_;
    std::string sanitized;
    if (!utf8_is_valid(input)) {
        sanitized = utf8_sanitize(input);
        input = sanitized;
    }
    std::vector<TokenId> ids;
    ids.reserve(input.size() / 3 + 4);
    if (add_special_tokens) ids = t.frame.prefix;

    std::vector<Segment> raw_segments, norm_segments;
    std::vector<Piece> pieces;
    t.added.split(input, false, raw_segments);
    for (const auto& seg : raw_segments) {
        if (seg.id >= 0) {
            ids.push_back(seg.id);
            continue;
        }
        std::string text(input.substr(seg.start, seg.end - seg.start));
        if (t.normalizer) t.normalizer->normalize(text);
        norm_segments.clear();
        t.added.split(text, true, norm_segments);
        for (const auto& inner : norm_segments) {
            if (inner.id >= 0) {
                ids.push_back(inner.id);
                continue;
            }
            pieces.clear();
            pieces.push_back({text.substr(inner.start, inner.end - inner.start), seg.start == 0 && inner.start == 0});
            if (t.pre_tokenizer) t.pre_tokenizer->pre_tokenize(pieces);
            for (const auto& p : pieces) t.model.encode(p.text, ids);
        }
    }
    if (add_special_tokens) ids.insert(ids.end(), t.frame.suffix.begin(), t.frame.suffix.end());
    return ids;
}

common::Result<std::string> Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
    const Impl& t = *impl_;
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const TokenId id : ids) {
        if (const auto* added = t.added.by_id(id)) {
            if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
            continue;
        }
        const std::string* token = t.model.id_to_token(id);
        if (!token) return common::make_error("token id " + std::to_string(id) + " is not in the vocabulary");
        tokens.push_back(*token);
    }
    std::string out;
    if (t.decoder) {
        t.decoder->decode_chain(tokens);
        for (const auto& s : tokens) out += s;
    } else {
        for (std::size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    }
    return out;
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const { return impl_->lookup(token); }

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
    if (const auto* added = impl_->added.by_id(id)) return added->content;
    if (const auto* token = impl_->model.id_to_token(id)) return *token;
    return std::nullopt;
}

const std::vector<std::optional<std::string>>& Tokenizer::pieces() const {
    std::call_once(impl_->pieces_made, [this] {
        const auto anchor_ids = encode("a", false);
        const std::vector<TokenId> anchor = {anchor_ids.empty() ? TokenId{0} : anchor_ids.front()};
        const auto before = decode(anchor);
        auto& pieces = impl_->pieces;
        pieces.resize(vocab_size());
        for (std::size_t id = 0; id < pieces.size() && before; ++id) {
            const TokenId pair[2] = {anchor.front(), static_cast<TokenId>(id)};
            if (is_special(pair[1])) continue;
            const auto text = decode(pair);
            if (!text || text->size() <= before->size() || text->compare(0, before->size(), *before) != 0) continue;
            std::string piece = text->substr(before->size());
            if (piece.find(replacement_character) == std::string::npos) {
                pieces[id] = std::move(piece);
                continue;
            }
            // Part of a character: its raw bytes, a <0xNN> byte token's or a byte-level token's, so that a
            // character the vocabulary spells only in bytes can still be written byte by byte.
            const std::string* token = impl_->model.id_to_token(pair[1]);
            std::string bytes;
            if (!token) continue;
            if (const int byte = byte_fallback_byte(*token); byte >= 0)
                pieces[id] = std::string(1, static_cast<char>(byte));
            else if (byte_level_decode(*token, bytes))
                pieces[id] = std::move(bytes);
        }
    });
    return impl_->pieces;
}

bool Tokenizer::is_special(TokenId id) const {
    const auto* added = impl_->added.by_id(id);
    return added && added->special;
}

std::size_t Tokenizer::vocab_size() const {
    std::size_t n = impl_->model.vocab_size();
    for (const auto& a : impl_->added.tokens()) n = std::max(n, static_cast<std::size_t>(a.id) + 1);
    return n;
}

const std::vector<TokenId>& Tokenizer::bos_ids() const { return impl_->frame.prefix; }
const std::vector<TokenId>& Tokenizer::eos_ids() const { return impl_->frame.suffix; }

}  // namespace tokenizer
