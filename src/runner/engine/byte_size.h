// Byte sizes as people write and read them: "20GiB", "512MiB", "1.5GB", "1000000" (bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace runner {

// nullopt if malformed.
std::optional<std::uint64_t> parse_size(const std::string& text);
// "1.50 GiB", "12.0 MiB", "3.0 KiB".
std::string format_size(std::uint64_t bytes);

}  // namespace runner
