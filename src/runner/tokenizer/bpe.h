// The BPE model of tokenizer.json, as Hugging Face `tokenizers` runs it: a piece is split into
// characters (or <0xNN> byte tokens with byte_fallback, or the fused unk token), then the pair of
// lowest merge rank is merged, leftmost first, until no pair has a merge. `ignore_merges` takes a
// piece that is itself in the vocabulary as one token. Results for short pieces are cached.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/tokenizer/json_view.h"
#include "runner/tokenizer/vocab.h"

namespace tokenizer {

class Bpe {
  public:
    // Reads the "model" object. Throws SchemaError naming the key and problem.
    static Bpe parse(const JsonView& model);

    Bpe(Bpe&&) noexcept;
    Bpe& operator=(Bpe&&) noexcept;
    ~Bpe();

    // Appends the ids of one pre-tokenized piece. Thread-safe (the cache is locked).
    void encode(std::string_view piece, std::vector<TokenId>& out) const;

    std::optional<TokenId> token_to_id(std::string_view token) const;
    // Null when `id` is not in the model's vocabulary.
    const std::string* id_to_token(TokenId id) const;
    std::size_t vocab_size() const { return id_to_token_.size(); }

  private:
    Bpe();
    void encode_uncached(std::string_view piece, std::vector<TokenId>& out) const;

    struct Merge {
        std::uint32_t rank;
        TokenId new_id;
    };
    struct Cache;

    StringMap<TokenId> vocab_;
    std::vector<std::string> id_to_token_;  // "" for ids the vocabulary skips
    std::vector<bool> id_present_;
    std::unordered_map<std::uint64_t, Merge> merges_;  // (left << 32 | right) → merge
    std::optional<TokenId> unk_id_;
    std::string continuing_subword_prefix_;
    std::string end_of_word_suffix_;
    bool fuse_unk_ = false;
    bool byte_fallback_ = false;
    bool ignore_merges_ = false;
    TokenId byte_ids_[256];  // <0xNN> tokens, -1 when absent
    std::unique_ptr<Cache> cache_;
};

}  // namespace tokenizer
