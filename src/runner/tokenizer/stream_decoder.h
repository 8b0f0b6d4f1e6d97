// Token-by-token output that only ever hands out complete UTF-8 characters: a character split over
// several tokens (byte-level or <0xNN> byte tokens) is held back until its last byte arrives.
// Works as Hugging Face's DecodeStream: decode the window [last emitted token, pending...] and emit
// what lies past the decoded text of the last emitted token, unless it ends in U+FFFD.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "runner/tokenizer/tokenizer.h"

namespace tokenizer {

class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
        : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

    // The text that `id` completes; empty while a character is still incomplete.
    common::Result<std::string> push(TokenId id);
    // Whatever is still held back (an incomplete character comes out as U+FFFD), then resets.
    common::Result<std::string> flush();

  private:
    common::Result<std::string> pending_text() const;

    const Tokenizer* tokenizer_;
    bool skip_special_;
    std::vector<TokenId> window_;  // [context (the last emitted token, if any), pending...]
    std::size_t context_ = 0;      // how many of window_ were already emitted
    std::string prefix_;           // decode(window_[0, context_))
};

}  // namespace tokenizer
