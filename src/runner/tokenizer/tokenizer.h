// A Hugging Face tokenizer.json (+ tokenizer_config.json) tokenizer: added tokens, normalizer,
// pre-tokenizer, BPE model, special-token frame and decoder, loaded once and then used read-only
// (encode and decode may run on several threads).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "runner/tokenizer/vocab.h"

namespace tokenizer {

class Tokenizer {
  public:
    // Reads and checks tokenizer.json and, when given, tokenizer_config.json. Errors name the file,
    // the key path and the problem.
    static common::Result<Tokenizer> load(const std::filesystem::path& tokenizer_json,
                                          const std::optional<std::filesystem::path>& tokenizer_config = std::nullopt);
    // The same from text in memory; the names stand in for file names in messages.
    static common::Result<Tokenizer> parse(std::string_view tokenizer_json, std::string_view json_name,
                                           std::string_view tokenizer_config = {}, std::string_view config_name = {});

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // Text → ids. Invalid UTF-8 is first replaced by U+FFFD (one per maximal subpart), as both
    // reference implementations do when handed bytes. add_special_tokens adds BOS/EOS per the
    // post-processor and tokenizer_config.json; added tokens in the text are always recognised.
    std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = true) const;

    // Ids → text through the decoder. An id outside the vocabulary is an error naming it.
    common::Result<std::string> decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

    std::optional<TokenId> token_to_id(std::string_view token) const;
    std::optional<std::string> id_to_token(TokenId id) const;
    bool is_special(TokenId id) const;
    // Each id's text as it continues text already written (a SentencePiece word's leading space kept): what
    // decoding it after another token adds; for a token that is only part of a character, its raw bytes
    // (a byte-level token's, or a <0xNN> token's byte). nullopt for special tokens and for tokens that add
    // nothing. Made once, on first use, for constrained output, which checks candidate tokens' bytes
    // against a grammar, and for log-probabilities' token texts.
    const std::vector<std::optional<std::string>>& pieces() const;
    std::size_t vocab_size() const;               // highest id + 1
    const std::vector<TokenId>& bos_ids() const;  // what add_special_tokens puts before the text
    const std::vector<TokenId>& eos_ids() const;  // and after it

    struct Impl;  // opaque: the pipeline's parts

  private:
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace tokenizer
