#include "runner/engine/byte_size.h"

#include <cmath>
#include <cstdio>
#include <regex>

namespace runner {

std::optional<std::uint64_t> parse_size(const std::string& text) {
    static const std::regex re(R"((\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return std::nullopt;
    const double value = std::stod(m[1].str());
    const std::string unit = m[2].matched ? m[2].str() : "B";
    double scale = 1;
    if (unit == "KiB")
        scale = 1024.0;
    else if (unit == "MiB")
        scale = 1024.0 * 1024;
    else if (unit == "GiB")
        scale = 1024.0 * 1024 * 1024;
    else if (unit == "TiB")
        scale = 1024.0 * 1024 * 1024 * 1024;
    else if (unit == "KB")
        scale = 1e3;
    else if (unit == "MB")
        scale = 1e6;
    else if (unit == "GB")
        scale = 1e9;
    else if (unit == "TB")
        scale = 1e12;
    return static_cast<std::uint64_t>(std::llround(value * scale));
}

std::string format_size(std::uint64_t bytes) {
    char buf[32];
    if (bytes >= (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
    else if (bytes >= (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
    else
        std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
    return buf;
}

}  // namespace runner
