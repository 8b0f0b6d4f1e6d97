#include "pkg/template.h"

namespace pkg {

namespace {

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

}  // namespace

common::Result<Rendered> render_template(std::string_view text, const std::string& file, const Variables& vars) {
    Rendered out;
    out.text.reserve(text.size());
    std::size_t line = 1, column = 1;
    std::string problems;
    const auto problem = [&](std::size_t l, std::size_t c, const std::string& what) {
        problems +=
            (problems.empty() ? "" : "\n") + file + ":" + std::to_string(l) + ":" + std::to_string(c) + ": " + what;
    };

    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == '@' && i + 1 < text.size() && text[i + 1] == '{') {
            const std::size_t close = text.find('}', i + 2);
            const std::size_t newline = text.find('\n', i + 2);
            if (close == std::string_view::npos || (newline != std::string_view::npos && newline < close)) {
                problem(line, column, "'@{' is not closed by '}' on the same line");
                out.text += text[i];
                ++i;
                ++column;
                continue;
            }
            const std::string name(text.substr(i + 2, close - i - 2));
            bool valid = !name.empty();
            for (const char c : name) valid = valid && is_name_char(c);
            if (!valid) {
                problem(line, column, "'@{" + name + "}' is not a variable name (lowercase letters, digits, '_')");
            } else if (const auto it = vars.find(name); it == vars.end()) {
                problem(line, column, "unknown variable '" + name + "'");
            } else {
                out.text += it->second;
                out.used.insert(name);
            }
            column += close + 1 - i;
            i = close + 1;
            continue;
        }
        out.text += text[i];
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
        ++i;
    }
    if (!problems.empty()) return common::make_error(problems);
    return out;
}

}  // namespace pkg
