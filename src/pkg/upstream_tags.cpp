#include "pkg/upstream_tags.h"

#include <map>
#include <regex>

#include "common/subprocess.h"
#include "pkg/config.h"
#include "pkg/sys/alpm_handle.h"

namespace pkg {

common::Result<std::vector<RemoteTag>> parse_ls_remote(std::string_view output) {
    static const std::regex line_re(R"(([0-9a-f]{40})\trefs/tags/([^\s^]+)(\^\{\})?)");
    std::map<std::string, std::string> direct, peeled;
    std::vector<std::string> order;
    std::size_t line_no = 0;
    while (!output.empty()) {
        ++line_no;
        const auto nl = output.find('\n');
        const std::string line(output.substr(0, nl));
        output = nl == std::string_view::npos ? std::string_view{} : output.substr(nl + 1);
        if (line.empty()) continue;
        std::smatch m;
        if (!std::regex_match(line, m, line_re))
            return common::make_error("git ls-remote output line " + std::to_string(line_no) +
                                      " is not 'SHA\\trefs/tags/NAME': '" + line + "'");
        const auto name = m[2].str();
        if (m[3].matched) {
            peeled[name] = m[1].str();
        } else {
            if (!direct.count(name)) order.push_back(name);
            direct[name] = m[1].str();
        }
    }
    std::vector<RemoteTag> tags;
    for (const auto& name : order) tags.push_back({name, peeled.count(name) ? peeled[name] : direct[name]});
    return tags;
}

bool is_release_tag(const std::string& name, bool include_rc) {
    static const std::regex stable(R"(v\d+\.\d+\.\d+)");
    static const std::regex rc(R"(v\d+\.\d+\.\d+-rc\d+)");
    return std::regex_match(name, stable) || (include_rc && std::regex_match(name, rc));
}

std::optional<RemoteTag> newest_release(const std::vector<RemoteTag>& tags, bool include_rc) {
    std::optional<RemoteTag> best;
    for (const auto& tag : tags) {
        if (!is_release_tag(tag.name, include_rc)) continue;
        if (!best || sys::vercmp(pkgver_from_tag(tag.name), pkgver_from_tag(best->name)) > 0) best = tag;
    }
    return best;
}

common::Result<std::vector<RemoteTag>> list_remote_tags(const std::string& repository, const std::string& pattern) {
    std::vector<std::string> argv = {"git", "ls-remote", "--tags", repository};
    if (!pattern.empty()) argv.push_back(pattern);
    auto run = common::run_subprocess(argv, {{}, {"GIT_TERMINAL_PROMPT=0"}, std::chrono::minutes(2)});
    if (!run) return run.error();
    if (!run->ok())
        return common::make_error(common::describe_command(argv) + " failed (exit " + std::to_string(run->exit_code) +
                                  "): " + run->err + "check the repository URL and your network");
    return parse_ls_remote(run->out);
}

}  // namespace pkg
