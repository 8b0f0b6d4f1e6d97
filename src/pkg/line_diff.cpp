#include "pkg/line_diff.h"

#include <algorithm>
#include <vector>

namespace pkg {

namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto nl = text.find('\n', start);
        if (nl == std::string::npos) {
            lines.push_back(text.substr(start) + "\\ no newline at end of file");
            break;
        }
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

}  // namespace

std::string line_diff(const std::string& old_text, const std::string& new_text, const std::string& old_name,
                      const std::string& new_name) {
    const auto a = split_lines(old_text);
    const auto b = split_lines(new_text);
    // Longest common subsequence table; recipe files are a few hundred lines, so O(n*m) is fine.
    std::vector<std::vector<unsigned>> lcs(a.size() + 1, std::vector<unsigned>(b.size() + 1, 0));
    for (std::size_t i = a.size(); i-- > 0;)
        for (std::size_t j = b.size(); j-- > 0;)
            lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);

    struct Op {
        char kind;  // ' ', '-', '+'
        std::string line;
    };
    std::vector<Op> ops;
    std::size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && j < b.size() && a[i] == b[j]) {
            ops.push_back({' ', a[i++]});
            ++j;
        } else if (i < a.size() && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
            ops.push_back({'-', a[i++]});
        } else {
            ops.push_back({'+', b[j++]});
        }
    }
    constexpr std::size_t context = 2;
    std::string out = "--- " + old_name + "\n+++ " + new_name + "\n";
    std::size_t last_printed = 0;
    bool printed_any = false;
    for (std::size_t k = 0; k < ops.size(); ++k) {
        bool near_change = false;
        for (std::size_t d = (k >= context ? k - context : 0); d <= std::min(ops.size() - 1, k + context); ++d)
            near_change = near_change || ops[d].kind != ' ';
        if (!near_change) continue;
        if (printed_any && k > last_printed + 1) out += "@@\n";
        out += std::string(1, ops[k].kind) + ops[k].line + "\n";
        last_printed = k;
        printed_any = true;
    }
    return out;
}

}  // namespace pkg
