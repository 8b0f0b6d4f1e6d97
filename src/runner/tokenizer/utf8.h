// UTF-8 helpers for the tokenizer: decoding with U+FFFD replacement (the WHATWG / Python
// errors="replace" rule, which both references use), appending code points, and finding where the
// last complete character ends, for streaming output.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tokenizer {

// Replaces every ill-formed subsequence with U+FFFD, one per maximal subpart (Unicode §3.9, the
// rule of the WHATWG decoder, Python's bytes.decode(errors="replace") and Rust's from_utf8_lossy).
std::string utf8_sanitize(std::string_view bytes);

bool utf8_is_valid(std::string_view bytes);

void utf8_append(std::string& out, char32_t cp);

// Decodes the character starting at text[pos] of valid UTF-8 and advances pos past it.
char32_t utf8_next(std::string_view text, std::size_t& pos);

// Length in bytes of the character whose lead byte is `lead` (1 for anything not a lead byte).
inline std::size_t utf8_length(unsigned char lead) {
    if (lead < 0xC0) return 1;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    return 4;
}

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

}  // namespace tokenizer
