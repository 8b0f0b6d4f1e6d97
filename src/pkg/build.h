// ollama-pkg build: prerequisites from libalpm, makepkg with progress and a log, then optionally
// inspect, verify and `sudo pacman -U`.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace pkg {

enum BuildExit : int { build_ok = 0, build_failed = 1, build_usage = 2, build_interrupted = 130 };

struct BuildOptions {
    std::filesystem::path config = "ollama-airllm-rocm.yaml";  // the recipe folder is its folder
    std::filesystem::path log;                                 // default: ollama-pkg-build.log beside it
    bool install = false;
    bool verbose = false;
    std::vector<std::string> makepkg_args;  // after `--`
    std::filesystem::path root = "/";
    std::filesystem::path dbpath = "/var/lib/pacman";
};

int build_package(const BuildOptions& options, std::ostream& out, std::ostream& err);

}  // namespace pkg
