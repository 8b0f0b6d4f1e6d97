// A compiled PCRE2 pattern (UTF + UCP, JIT when available) for the tokenizer's Split and Replace
// patterns, which are written for Rust's `regex`/Oniguruma. One translation keeps them exact:
// `\s` gets U+0085 (NEXT LINE), which Rust counts as White_Space and PCRE2's UCP `\s` leaves out.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "runner/tokenizer/json_view.h"

namespace tokenizer {

struct MatchRange {
    std::size_t start;
    std::size_t end;
};

class Regex {
  public:
    // `where` names the pattern's place in the file for error messages.
    static common::Result<Regex> compile(std::string_view pattern, std::string_view where);
    // A literal string pattern (Split/Replace with {"String": ...}).
    static Regex literal(std::string_view text);

    // Non-overlapping matches, left to right, in valid UTF-8 (empty matches are skipped).
    void find_all(std::string_view subject, std::vector<MatchRange>& out) const;

    Regex(Regex&&) noexcept;
    Regex& operator=(Regex&&) noexcept;
    ~Regex();

  private:
    struct Impl;
    explicit Regex(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The {"String": s} / {"Regex": r} pattern objects of Split, Replace and the Replace decoder.
// Throws SchemaError.
Regex parse_pattern(const JsonView& json);

// Exposed for tests: the pattern as handed to PCRE2.
std::string translate_pattern(std::string_view pattern);

}  // namespace tokenizer
