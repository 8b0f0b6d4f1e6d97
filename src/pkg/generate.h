// Renders templates/ with ollama-airllm-rocm.yaml into the recipe files at the top level.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace pkg {

struct GenerateOptions {
    std::filesystem::path config;     // ollama-airllm-rocm.yaml
    std::filesystem::path templates;  // templates/
    std::filesystem::path patches;    // patches/ (may be missing: no patches)
    std::filesystem::path output;     // where PKGBUILD and its companions go
};

struct GeneratedFile {
    std::string name;            // relative to the output folder
    std::string contents;        // empty for a symlink
    std::string symlink_target;  // set for patches/NAME.patch links (makepkg finds sources only at the top)
};

// `config_text`, when given, is used instead of reading options.config (which still names it in
// messages): `update` renders the recipe from the edited configuration before writing anything.
common::Result<std::vector<GeneratedFile>> generate_recipe(
    const GenerateOptions& options, const std::optional<std::string>& config_text = std::nullopt);

struct FileStatus {
    std::string name;
    bool up_to_date = false;
    std::string diff;  // when it differs
};

// Compares with what is on disk; nothing is written.
std::vector<FileStatus> compare_with_disk(const std::vector<GeneratedFile>& files, const std::filesystem::path& output);

// Writes each file atomically (temp file, then rename); returns the names actually changed.
common::Result<std::vector<std::string>> write_generated(const std::vector<GeneratedFile>& files,
                                                         const std::filesystem::path& output);

}  // namespace pkg
