// What `ollama-pkg build` needs installed, read from the local pacman database through libalpm.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "pkg/recipe.h"

namespace pkg {

struct Prerequisites {
    bool database_present = false;       // false on a machine pacman does not manage (Debian CI)
    std::vector<std::string> satisfied;  // "cmake: cmake 3.31.6-1"
    std::vector<std::string> missing;    // dependency strings nothing installed satisfies
    std::string rocm_version;            // rocm-core's version, when installed
    std::string go_version;
    std::vector<std::string> skipped;  // checks not made, with why
};

common::Result<Prerequisites> check_prerequisites(const Recipe& recipe, const std::filesystem::path& root,
                                                  const std::filesystem::path& dbpath);

// "sudo pacman -S --needed a b c"
std::string install_command(const std::vector<std::string>& missing);

}  // namespace pkg
