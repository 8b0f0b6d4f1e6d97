// .SRCINFO as `makepkg --printsrcinfo` writes it (libmakepkg srcinfo.sh): pkgbase and the global
// fields in makepkg's order, one TAB-indented "key = value" line per array element, then a blank line
// and the package section. A single package overrides nothing, so its section is its name alone.
#pragma once

#include <string>

#include "pkg/recipe.h"

namespace pkg {

std::string write_srcinfo(const Recipe& recipe);

}  // namespace pkg
