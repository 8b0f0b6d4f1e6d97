#include "probe/properties.h"

#include <charconv>

namespace probe {

using common::make_error;
using common::Result;

std::optional<std::uint64_t> Properties::get(const std::string& key) const {
    const auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
}

std::uint64_t Properties::get_or(const std::string& key, std::uint64_t fallback) const {
    return get(key).value_or(fallback);
}

namespace {

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

std::string printable(std::string_view line) {
    std::string out;
    for (const char c : line.substr(0, 60)) {
        if (c >= 0x20 && c < 0x7f)
            out += c;
        else
            out += '?';
    }
    if (line.size() > 60) out += "...";
    return out;
}

}  // namespace

Result<Properties> parse_properties(std::string_view text, const std::string& file) {
    if (text.empty()) return make_error(file + ": empty file (expected 'key value' lines)");
    Properties props;
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);

        const auto bad = [&](const std::string& why) {
            return make_error(file + ":" + std::to_string(line_no) + ": " + why + ", found '" + printable(line) + "'");
        };
        const std::size_t space = line.find(' ');
        if (space == std::string_view::npos || space == 0) return bad("expected 'key value'");
        const std::string_view key = line.substr(0, space);
        const std::string_view value = line.substr(space + 1);
        for (const char c : key)
            if (!is_key_char(c)) return bad("key has characters sysfs never prints");
        std::uint64_t number = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size())
            return bad("value of '" + std::string(key) + "' is not an unsigned decimal number");
        if (props.has(std::string(key))) return bad("key '" + std::string(key) + "' appears twice");
        props.set(std::string(key), number);
    }
    return props;
}

Result<std::uint64_t> parse_attribute(std::string_view text, const std::string& file) {
    std::string_view v = text;
    if (!v.empty() && v.back() == '\n') v.remove_suffix(1);
    int base = 10;
    if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        v.remove_prefix(2);
        base = 16;
    }
    std::uint64_t number = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), number, base);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size())
        return make_error(file + ": expected one number, found '" + printable(text) + "'");
    return number;
}

}  // namespace probe
