// Writes a file whole or not at all: a temporary file in the same folder, fsync, then rename.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/result.h"

namespace common {

struct Written {};

// `mode` applies to the new file (0644 by default); an existing file's mode is kept when `mode` is 0.
Result<Written> write_file_atomically(const std::filesystem::path& path, std::string_view contents,
                                      unsigned mode = 0644);

}  // namespace common
