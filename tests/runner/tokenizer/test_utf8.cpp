// UTF-8 replacement of invalid input, the rule both references use (one U+FFFD per maximal subpart).
#include <doctest/doctest.h>

#include "runner/tokenizer/utf8.h"

using tokenizer::utf8_sanitize;

TEST_CASE("tokenizer utf8: invalid sequences become one U+FFFD per maximal subpart") {
    const std::string r = "\xEF\xBF\xBD";
    const struct {
        std::string in, out;
    } rows[] = {
        {"plain ascii", "plain ascii"},
        {"\xC3\xA9", "\xC3\xA9"},  // é stays
        {"\xFF", r},               // never a lead byte
        {"\xE4\xBD", r},           // truncated 3-byte sequence: one
        {"\xE4\xBD"
         "a",
         r + "a"},                                 // and the next byte is read again
        {"\xC0\xAF", r + r},                       // overlong: C0 is never valid
        {"\xED\xA0\x80", r + r + r},               // surrogate: ED then A0 out of range
        {"\xF0\x9F\x98", r},                       // truncated emoji
        {"\xF4\x90\x80\x80", r + r + r + r},       // above U+10FFFF
        {"\x80\x80", r + r},                       // lone continuation bytes
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},  // 😀 stays
    };
    for (const auto& row : rows) {
        CAPTURE(row.in);
        CHECK(utf8_sanitize(row.in) == row.out);
        CHECK(tokenizer::utf8_is_valid(row.out));
    }
}
