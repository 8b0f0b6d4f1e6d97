#include "probe/gfx_target.h"

#include <charconv>
#include <cstdio>

namespace probe {

using common::make_error;
using common::Result;

Result<GfxVersion> decode_kfd_gfx_version(std::uint64_t value) {
    if (value == 0) return make_error("gfx_target_version is 0 (a CPU node or a masked GPU)");
    const GfxVersion v{static_cast<unsigned>(value / 10000), static_cast<unsigned>((value / 100) % 100),
                       static_cast<unsigned>(value % 100)};
    if (v.minor > 0xf || v.stepping > 0xf || v.major > 63)
        return make_error("gfx_target_version " + std::to_string(value) +
                          " does not decode to a gfx name (minor and stepping must be below 16)");
    return v;
}

std::string gfx_name(GfxVersion version) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "gfx%u%x%x", version.major, version.minor, version.stepping);
    return buf;
}

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

Result<GfxVersion> parse_gfx_name(std::string_view name) {
    const auto bad = [&] {
        return make_error("'" + std::string(name) + "' is not a gfx target name (expected e.g. gfx1100, gfx90a)");
    };
    if (name.size() < 6 || name.substr(0, 3) != "gfx") return bad();
    const std::string_view digits = name.substr(3);
    const std::string_view major_text = digits.substr(0, digits.size() - 2);
    unsigned major = 0;
    const auto [end, ec] = std::from_chars(major_text.data(), major_text.data() + major_text.size(), major);
    if (ec != std::errc() || end != major_text.data() + major_text.size()) return bad();
    const int minor = hex_digit(digits[digits.size() - 2]);
    const int stepping = hex_digit(digits[digits.size() - 1]);
    if (minor < 0 || stepping < 0 || major == 0 || major > 63) return bad();
    return GfxVersion{major, static_cast<unsigned>(minor), static_cast<unsigned>(stepping)};
}

Result<GfxVersion> parse_override(std::string_view text) {
    const auto bad = [&](const std::string& why) {
        return make_error("HSA_OVERRIDE_GFX_VERSION='" + std::string(text) + "' is malformed: " + why +
                          " (expected M.m.s with decimal parts, major <= 63, minor and stepping <= 255, e.g. 11.0.0)");
    };
    unsigned parts[3] = {0, 0, 0};
    const char* p = text.data();
    const char* const end = text.data() + text.size();
    for (int i = 0; i < 3; ++i) {
        if (i > 0) {
            if (p == end || *p != '.') return bad("it needs exactly three dot-separated numbers");
            ++p;
        }
        if (p == end || *p < '0' || *p > '9') return bad("part " + std::to_string(i + 1) + " is not a decimal number");
        const auto [next, ec] = std::from_chars(p, end, parts[i]);
        if (ec != std::errc()) return bad("part " + std::to_string(i + 1) + " is out of range");
        p = next;
    }
    if (p != end) return bad("unexpected '" + std::string(p, end) + "' after the third number");
    if (parts[0] > 63) return bad("major " + std::to_string(parts[0]) + " is above 63");
    if (parts[1] > 255 || parts[2] > 255) return bad("minor or stepping above 255");
    return GfxVersion{parts[0], parts[1], parts[2]};
}

std::string override_string(GfxVersion version) {
    return std::to_string(version.major) + "." + std::to_string(version.minor) + "." + std::to_string(version.stepping);
}

}  // namespace probe
