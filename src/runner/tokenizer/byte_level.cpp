#include "runner/tokenizer/byte_level.h"

#include <array>

#include "runner/tokenizer/utf8.h"

namespace tokenizer {

namespace {

struct Tables {
    std::array<char32_t, 256> to_char{};
    std::array<short, 324> to_byte{};  // indexed by code point < 324
};

constexpr bool printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

constexpr Tables make_tables() {
    Tables t;
    for (auto& v : t.to_byte) v = -1;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
        const char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
        t.to_char[static_cast<std::size_t>(b)] = cp;
        t.to_byte[cp] = static_cast<short>(b);
    }
    return t;
}

constexpr Tables tables = make_tables();

// Pre-encoded UTF-8 of each byte's character (at most 2 bytes: all are below U+0800).
struct Encoded {
    std::array<std::array<char, 2>, 256> bytes{};
    std::array<unsigned char, 256> length{};
};

constexpr Encoded make_encoded() {
    Encoded e;
    for (std::size_t b = 0; b < 256; ++b) {
        const char32_t cp = tables.to_char[b];
        if (cp < 0x80) {
            e.bytes[b][0] = static_cast<char>(cp);
            e.length[b] = 1;
        } else {
            e.bytes[b][0] = static_cast<char>(0xC0 | (cp >> 6));
            e.bytes[b][1] = static_cast<char>(0x80 | (cp & 0x3F));
            e.length[b] = 2;
        }
    }
    return e;
}

constexpr Encoded encoded = make_encoded();

}  // namespace

void byte_level_encode(std::string_view bytes, std::string& out) {
    out.reserve(out.size() + bytes.size() * 2);
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out.append(encoded.bytes[b].data(), encoded.length[b]);
    }
}

int byte_level_byte(char32_t cp) { return cp < tables.to_byte.size() ? tables.to_byte[cp] : -1; }

bool byte_level_decode(std::string_view token, std::string& out) {
    const std::size_t mark = out.size();
    std::size_t pos = 0;
    while (pos < token.size()) {
        const int b = byte_level_byte(utf8_next(token, pos));
        if (b < 0) {
            out.resize(mark);
            return false;
        }
        out.push_back(static_cast<char>(b));
    }
    return true;
}

}  // namespace tokenizer
