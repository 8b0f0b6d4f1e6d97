#include "pkg/config_edit.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace pkg {

namespace {

std::string dotted(const std::vector<std::string>& path) {
    std::string out;
    for (const auto& p : path) out += (out.empty() ? "" : ".") + p;
    return out;
}

// Offset of the end of the line that holds `pos`, after its newline.
std::size_t line_end(const std::string& text, std::size_t pos) {
    const auto nl = text.find('\n', pos);
    return nl == std::string::npos ? text.size() : nl + 1;
}

struct Splice {
    std::size_t begin;
    std::size_t end;
    std::string replacement;
};

common::Result<Splice> plan_edit(const std::string& text, const std::string& file, const ConfigEdit& edit) {
    YAML::Node root = YAML::Load(text);
    YAML::Node parent = root;
    for (std::size_t i = 0; i + 1 < edit.path.size(); ++i) {
        parent = parent[edit.path[i]];
        if (!parent.IsMap())
            return common::make_error(file + ": no mapping '" +
                                      dotted({edit.path.begin(), edit.path.begin() + static_cast<long>(i) + 1}) +
                                      "' to put " + dotted(edit.path) + " in");
    }
    const auto& key = edit.path.back();
    for (const auto& entry : parent) {
        if (entry.first.Scalar() != key) continue;
        const YAML::Node value = entry.second;
        if (!value.IsScalar()) return common::make_error(file + ": " + dotted(edit.path) + " is not a single value");
        const auto begin = static_cast<std::size_t>(value.Mark().pos);
        // The values edited here (tags, commits, pkgrel) hold no ',', '}' or ']', so the scalar runs to
        // the first of those (flow style), a comment or the end of the line.
        std::size_t end = text.find_first_of(",}]\n", begin);
        if (end == std::string::npos) end = text.size();
        const auto comment = text.find(" #", begin);
        if (comment != std::string::npos && comment < end) end = comment;
        while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\r')) --end;
        return Splice{begin, end, edit.value};
    }
    // Not present: add "key: value" after the parent's last entry, indented like its siblings.
    if (parent.size() == 0 || parent.Style() == YAML::EmitterStyle::Flow)
        return common::make_error(file + ": cannot add " + dotted(edit.path) +
                                  " to an empty or {flow} mapping; add it by hand");
    std::size_t last_line_start = 0;
    int indent = 0;
    for (const auto& entry : parent) {
        last_line_start = std::max(last_line_start, static_cast<std::size_t>(entry.second.Mark().pos));
        indent = entry.first.Mark().column;
    }
    const auto at = line_end(text, last_line_start);
    return Splice{at, at, std::string(static_cast<std::size_t>(indent), ' ') + key + ": " + edit.value + "\n"};
}

}  // namespace

common::Result<std::string> edit_config_text(const std::string& text, const std::string& file,
                                             const std::vector<ConfigEdit>& edits) {
    std::string out = text;
    try {
        // One edit at a time, re-parsing in between, so that positions always refer to the current text.
        for (const auto& edit : edits) {
            auto splice = plan_edit(out, file, edit);
            if (!splice) return splice.error();
            out.replace(splice->begin, splice->end - splice->begin, splice->replacement);
        }
    } catch (const YAML::Exception& e) {
        return common::make_error(file + ": cannot edit: " + e.what());
    }
    return out;
}

}  // namespace pkg
