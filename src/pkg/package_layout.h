// What a built ollama-airllm-rocm package must look like: the expected files as one constexpr table,
// plus the rules every entry and .PKGINFO must follow. check_layout runs all of them and reports
// every result (not just the first failure), each naming the path and the rule.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pkg/sys/archive_reader.h"

namespace pkg {

struct LayoutRow {
    std::string_view path;  // directories end in '/'
    sys::EntryType type;
    std::uint32_t mode;  // exact permission bits
    bool required;
    bool backup;  // must be listed in .PKGINFO backup (a user-edited file pacman keeps on upgrade)
};

inline constexpr std::string_view env_file = "etc/default/ollama";

inline constexpr LayoutRow package_layout[] = {
    {"usr/bin/ollama", sys::EntryType::file, 0755, true, false},
    {"usr/bin/rocm-probe", sys::EntryType::file, 0755, true, false},
    {"usr/bin/ollama-pkg", sys::EntryType::file, 0755, false, false},
    {"usr/lib/ollama/", sys::EntryType::directory, 0755, true, false},
    {"usr/lib/systemd/system/ollama.service", sys::EntryType::file, 0644, true, false},
    {"usr/lib/sysusers.d/ollama.conf", sys::EntryType::file, 0644, true, false},
    {"usr/lib/tmpfiles.d/ollama.conf", sys::EntryType::file, 0644, true, false},
    {env_file, sys::EntryType::file, 0644, true, true},
    {"usr/share/licenses/ollama-airllm-rocm/LICENSE", sys::EntryType::file, 0644, true, false},
};

// No entry may sit in (or be) one of these: pacman must not own local, home or temporary folders.
inline constexpr std::string_view forbidden_prefixes[] = {"usr/local/", "home/", "tmp/", "var/tmp/"};

// Payload files whose contents a rule reads (inspect reads them from the archive).
inline constexpr std::string_view files_to_read[] = {env_file};

// .PKGINFO: "key = value" lines in order; repeated keys (backup, depend, ...) keep every value.
struct PkgInfo {
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<std::string> malformed;  // non-comment lines that are not "key = value"

    std::string first(std::string_view key) const;  // empty when absent
    std::vector<std::string> all(std::string_view key) const;
};

PkgInfo parse_pkginfo(std::string_view text);

enum class CheckStatus { ok, failed, skipped };

struct LayoutCheck {
    std::string path;  // the entry (or ".PKGINFO") the rule is about
    std::string rule;  // short rule id: required, type, mode, backup, forbidden-dir, world-writable, ...
    CheckStatus status = CheckStatus::ok;
    std::string detail;  // what was expected and what was found
};

// `entries` are the payload entries (no dot files); `texts` maps a path from files_to_read to its contents.
std::vector<LayoutCheck> check_layout(const PkgInfo& pkginfo, const std::vector<sys::ArchiveEntry>& entries,
                                      const std::map<std::string, std::string, std::less<>>& texts);

std::string mode_string(std::uint32_t mode);  // "0755"

}  // namespace pkg
