// Structured output: the tokens a grammar allows next, over the tokenizer's pieces. An end of text is
// allowed once the grammar's sentence is whole; the mask also leaves it when no token can continue the
// sentence (a vocabulary without a piece the grammar needs), so that generation ends instead of sampling
// from nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runner/completion/grammar.h"
#include "runner/engine/sampling.h"
#include "runner/tokenizer/tokenizer.h"

namespace runner {

class FormatConstraint final : public TokenConstraint {
  public:
    // `tok` outlives the constraint; `eos_ids`: the tokens that end a model's answer.
    FormatConstraint(const grammar::Grammar& grammar, const tokenizer::Tokenizer& tok,
                     std::vector<std::int32_t> eos_ids);

    bool allows(std::int32_t id) const override;
    void mask(std::span<float> logits) const override;
    void accept(std::int32_t id) override;

    // Whether what was generated is a whole sentence of the grammar.
    bool complete() const { return matcher_.complete(); }

  private:
    // The tokens a state allows among n_tokens, a bit each; `stuck`: none, so the ends of text get logit 0.
    struct StateMask {
        int state;
        std::size_t n_tokens;
        std::vector<std::uint64_t> allowed;
        bool stuck;
    };

    bool is_eos(std::int32_t id) const;
    const std::string* piece(std::int32_t id) const;  // null: no text a format can take
    StateMask mask_now(std::size_t n_tokens) const;

    grammar::Matcher matcher_;
    const std::vector<std::optional<std::string>>* pieces_;
    std::vector<std::int32_t> eos_;
    // Masks of the states met, most recent last: inside a string or a list an answer comes back to one
    // state token after token, and walking every piece again took 3 ms a 128k vocabulary.
    mutable std::vector<StateMask> masks_;
};

}  // namespace runner
