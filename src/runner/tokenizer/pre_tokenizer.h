// Pre-tokenizers of tokenizer.json: Split (PCRE2 or literal patterns, all five behaviours, invert),
// ByteLevel, Metaspace, Digits and Sequence. Each turns a list of pieces into a finer list; the
// model then encodes every piece on its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runner/tokenizer/json_view.h"
#include "runner/tokenizer/regex.h"

namespace tokenizer {

struct Piece {
    std::string text;
    bool at_start = false;  // begins at offset 0 of the input (Metaspace's prepend_scheme "first")
};

class PreTokenizer {
  public:
    virtual ~PreTokenizer() = default;
    virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

using PreTokenizerPtr = std::unique_ptr<const PreTokenizer>;

// Null JSON gives a null pointer (the whole text is one piece). Throws SchemaError.
PreTokenizerPtr parse_pre_tokenizer(const JsonView& json);

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// The ranges of `length` bytes that a split with these matches keeps, as Hugging Face's
// NormalizedString::split computes them (empty ranges dropped). Exposed for tests.
std::vector<MatchRange> split_ranges(std::size_t length, const std::vector<MatchRange>& matches, SplitBehavior behavior,
                                     bool invert);

}  // namespace tokenizer
