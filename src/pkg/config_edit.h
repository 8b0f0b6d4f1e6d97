// Edits values in ollama-airllm-rocm.yaml in place, keeping every comment and the layout: the value's
// position comes from the YAML parser, and only that span of text changes.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace pkg {

struct ConfigEdit {
    std::vector<std::string> path;  // {"upstream", "tag"}
    std::string value;              // written as a plain scalar
};

// Applies every edit or none. A missing final key whose parent mapping exists is added after the
// parent's last entry, with the same indentation.
common::Result<std::string> edit_config_text(const std::string& text, const std::string& file,
                                             const std::vector<ConfigEdit>& edits);

}  // namespace pkg
