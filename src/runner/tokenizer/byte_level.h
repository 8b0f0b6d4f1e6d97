// GPT-2's byte-level alphabet: every byte maps to one printable character, so that a BPE vocabulary
// of strings can cover arbitrary bytes (printable ASCII and Latin-1 map to themselves; the other 68
// bytes to U+0100..U+0143 in order).
#pragma once

#include <string>
#include <string_view>

namespace tokenizer {

// Appends the byte-level form of `bytes` to out.
void byte_level_encode(std::string_view bytes, std::string& out);

// The byte a byte-level character stands for, or -1 when `cp` is not in the alphabet.
int byte_level_byte(char32_t cp);

// Decodes a byte-level token to its bytes; false (out unchanged) when a character is outside the
// alphabet, in which case Hugging Face keeps the token's own bytes.
bool byte_level_decode(std::string_view token, std::string& out);

}  // namespace tokenizer
