// The one substitution syntax of templates/: @{name} is replaced by the variable's value. Nothing
// else is special. An unknown name, an unclosed @{ or a malformed name is an error naming the
// template, line and column; a variable that no template uses is reported by the caller.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pkg {

using Variables = std::map<std::string, std::string>;

struct Rendered {
    std::string text;
    std::set<std::string> used;  // names the template referred to
};

common::Result<Rendered> render_template(std::string_view text, const std::string& file, const Variables& vars);

}  // namespace pkg
