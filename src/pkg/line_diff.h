// A unified-style line diff for `generate --check`: what the committed file has ("-") against
// what the templates give ("+"), with a little context.
#pragma once

#include <string>

namespace pkg {

std::string line_diff(const std::string& old_text, const std::string& new_text, const std::string& old_name,
                      const std::string& new_name);

}  // namespace pkg
