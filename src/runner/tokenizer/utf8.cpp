#include "runner/tokenizer/utf8.h"

namespace tokenizer {

std::string utf8_sanitize(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    std::size_t i = 0;
    const std::size_t n = bytes.size();
    while (i < n) {
        const auto b = static_cast<unsigned char>(bytes[i]);
        if (b < 0x80) {
            out.push_back(static_cast<char>(b));
            ++i;
            continue;
        }
        std::size_t need = 0;
        unsigned char lower = 0x80, upper = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) lower = 0xA0;
            if (b == 0xED) upper = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) lower = 0x90;
            if (b == 0xF4) upper = 0x8F;
        } else {
            out += replacement_character;
            ++i;
            continue;
        }
        // A maximal subpart ends at the first byte that cannot continue the sequence; that byte is
        // then read again as the start of the next one.
        std::size_t j = i + 1;
        std::size_t seen = 0;
        while (seen < need && j < n) {
            const auto c = static_cast<unsigned char>(bytes[j]);
            if (c < lower || c > upper) break;
            lower = 0x80;
            upper = 0xBF;
            ++j;
            ++seen;
        }
        if (seen == need) {
            out.append(bytes.substr(i, j - i));
        } else {
            out += replacement_character;
        }
        i = j;
    }
    return out;
}

bool utf8_is_valid(std::string_view bytes) {
    // Cheap for ASCII, exact otherwise: sanitizing valid text changes nothing.
    for (const char c : bytes)
        if (static_cast<unsigned char>(c) >= 0x80) return utf8_sanitize(bytes) == bytes;
    return true;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

char32_t utf8_next(std::string_view text, std::size_t& pos) {
    const auto b = static_cast<unsigned char>(text[pos]);
    const std::size_t len = utf8_length(b);
    if (len == 1 || pos + len > text.size()) {
        ++pos;
        return b;
    }
    char32_t cp = len == 2 ? (b & 0x1Fu) : len == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3Fu);
    pos += len;
    return cp;
}

}  // namespace tokenizer
