// Added tokens (tokenizer.json "added_tokens"): found in the text before the model runs, leftmost
// and then longest first, honouring lstrip / rstrip / single_word. Tokens with normalized=false are
// matched in the raw text; those with normalized=true in the normalized text, as Hugging Face does.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/tokenizer/json_view.h"
#include "runner/tokenizer/normalizer.h"
#include "runner/tokenizer/vocab.h"

namespace tokenizer {

struct AddedToken {
    TokenId id = 0;
    std::string content;
    bool special = false;
    bool lstrip = false;
    bool rstrip = false;
    bool single_word = false;
    bool normalized = false;
};

// A part of the text: an added token (id >= 0) or text for the model (id < 0).
struct Segment {
    std::size_t start;
    std::size_t end;
    TokenId id;
};

class AddedVocabulary {
  public:
    // `list` is the "added_tokens" array (null for none). Throws SchemaError.
    static AddedVocabulary parse(const JsonView& list, const Normalizer* normalizer);

    AddedVocabulary();
    AddedVocabulary(AddedVocabulary&&) noexcept;
    AddedVocabulary& operator=(AddedVocabulary&&) noexcept;
    ~AddedVocabulary();

    // Splits `text` by the tokens of one kind (normalized or not), covering it in order.
    void split(std::string_view text, bool normalized, std::vector<Segment>& out) const;

    const AddedToken* by_id(TokenId id) const;
    const AddedToken* by_content(std::string_view content) const;
    const std::vector<AddedToken>& tokens() const { return tokens_; }

  private:
    class Trie;
    std::vector<AddedToken> tokens_;
    StringMap<std::size_t> by_content_;
    std::unordered_map<TokenId, std::size_t> by_id_;
    std::unique_ptr<Trie> raw_trie_;         // normalized == false
    std::unique_ptr<Trie> normalized_trie_;  // normalized == true, content normalized
};

}  // namespace tokenizer
