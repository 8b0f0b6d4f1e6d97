// Parsers for the two sysfs value formats rocm-probe reads: KFD `properties` files ("key value" lines,
// decimal) and single-value DRM attributes ("0x1002", "25753026560").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace probe {

// Keys are matched exactly: "capability" must not find "capability2".
class Properties {
  public:
    std::optional<std::uint64_t> get(const std::string& key) const;
    std::uint64_t get_or(const std::string& key, std::uint64_t fallback) const;
    bool has(const std::string& key) const { return values_.count(key) != 0; }
    std::size_t size() const { return values_.size(); }

    void set(std::string key, std::uint64_t value) { values_[std::move(key)] = value; }

  private:
    std::map<std::string, std::uint64_t> values_;
};

// The kernel prints one "key value\n" per field, ASCII decimal. Any other line (a truncated capture,
// garbage, a duplicate key) makes the whole file untrustworthy: the error names `file` and the line.
common::Result<Properties> parse_properties(std::string_view text, const std::string& file);

// One unsigned integer, decimal or 0x-hex, with an optional trailing newline.
common::Result<std::uint64_t> parse_attribute(std::string_view text, const std::string& file);

}  // namespace probe
