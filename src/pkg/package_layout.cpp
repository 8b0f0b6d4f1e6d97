#include "pkg/package_layout.h"

#include <algorithm>
#include <cstdio>

namespace pkg {

namespace {

std::string_view without_slash(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    return path;
}

const sys::ArchiveEntry* find_entry(const std::vector<sys::ArchiveEntry>& entries, std::string_view path) {
    const auto want = without_slash(path);
    for (const auto& e : entries)
        if (without_slash(e.path) == want) return &e;
    return nullptr;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

LayoutCheck ok(std::string path, std::string rule, std::string detail) {
    return {std::move(path), std::move(rule), CheckStatus::ok, std::move(detail)};
}
LayoutCheck failed(std::string path, std::string rule, std::string detail) {
    return {std::move(path), std::move(rule), CheckStatus::failed, std::move(detail)};
}

void check_row(const LayoutRow& row, const PkgInfo& pkginfo, const std::vector<sys::ArchiveEntry>& entries,
               std::vector<LayoutCheck>& out) {
    const std::string path(row.path);
    const sys::ArchiveEntry* e = find_entry(entries, row.path);
    const std::string want = std::string(sys::entry_type_name(row.type)) + " " + mode_string(row.mode);
    if (!e) {
        if (row.required)
            out.push_back(failed(path, "required", "missing from the package (expected a " + want + ")"));
        else
            out.push_back({path, "optional", CheckStatus::skipped, "not in the package (optional)"});
    } else if (e->type != row.type) {
        out.push_back(failed(path, "type",
                             std::string("expected a ") + sys::entry_type_name(row.type) + ", found a " +
                                 sys::entry_type_name(e->type)));
    } else if (e->mode != row.mode) {
        out.push_back(
            failed(path, "mode", "expected mode " + mode_string(row.mode) + ", found " + mode_string(e->mode)));
    } else {
        out.push_back(ok(path, row.required ? "required" : "optional", want));
    }
    if (row.backup) {
        const auto backups = pkginfo.all("backup");
        if (std::find(backups.begin(), backups.end(), path) != backups.end())
            out.push_back(ok(path, "backup", "listed in .PKGINFO backup"));
        else
            out.push_back(failed(path, "backup", "not listed in .PKGINFO backup (user edits would be overwritten)"));
    }
}

void check_pkginfo(const PkgInfo& pkginfo, const std::vector<sys::ArchiveEntry>& entries,
                   std::vector<LayoutCheck>& out) {
    for (const auto& line : pkginfo.malformed)
        out.push_back(failed(".PKGINFO", "pkginfo-syntax", "not a 'key = value' line: '" + line + "'"));
    for (const char* key : {"pkgname", "arch"}) {
        const std::string value = pkginfo.first(key);
        if (value.empty())
            out.push_back(failed(".PKGINFO", std::string("pkginfo-") + key, std::string("no ") + key + " field"));
        else
            out.push_back(ok(".PKGINFO", std::string("pkginfo-") + key, std::string(key) + " = " + value));
    }
    const std::string pkgver = pkginfo.first("pkgver");
    if (pkgver.empty())
        out.push_back(failed(".PKGINFO", "pkginfo-pkgver", "no pkgver field"));
    else if (pkgver.find('-') == std::string::npos)
        out.push_back(failed(".PKGINFO", "pkginfo-pkgver",
                             "pkgver '" + pkgver + "' has no '-pkgrel' (pacman rejects it: invalid package version)"));
    else
        out.push_back(ok(".PKGINFO", "pkginfo-pkgver", "pkgver = " + pkgver));
    for (const auto& b : pkginfo.all("backup")) {
        const sys::ArchiveEntry* e = find_entry(entries, b);
        if (!e || e->type != sys::EntryType::file)
            out.push_back(failed(b, "backup-present", "listed in .PKGINFO backup but not a file in the package"));
    }
}

void check_entries(const std::vector<sys::ArchiveEntry>& entries, std::vector<LayoutCheck>& out) {
    bool forbidden_found = false, writable_found = false;
    for (const auto& e : entries) {
        const std::string_view path = without_slash(e.path);
        for (const auto prefix : forbidden_prefixes) {
            if (path == without_slash(prefix) || path.substr(0, prefix.size()) == prefix) {
                out.push_back(failed(
                    e.path, "forbidden-dir",
                    "nothing may be installed under /" + std::string(prefix) + " (local, home and temporary folders)"));
                forbidden_found = true;
            }
        }
        // A symlink's own mode (0777) means nothing; its target is checked as its own entry.
        if (e.type != sys::EntryType::symlink && (e.mode & 0002) != 0) {
            out.push_back(failed(e.path, "world-writable", "mode " + mode_string(e.mode) + " lets any user write it"));
            writable_found = true;
        }
    }
    if (!forbidden_found) out.push_back(ok("*", "forbidden-dir", "nothing under usr/local, home, tmp or var/tmp"));
    if (!writable_found) out.push_back(ok("*", "world-writable", "no world-writable entry"));
}

void check_env_file(const std::map<std::string, std::string, std::less<>>& texts, std::vector<LayoutCheck>& out) {
    const auto it = texts.find(env_file);
    if (it == texts.end()) return;  // missing: the table row reports it
    std::size_t line_no = 0, start = 0;
    bool found = false;
    const std::string& text = it->second;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line = trim(std::string_view(text).substr(start, end - start));
        ++line_no;
        if (!line.empty() && line.front() != '#' && line.find("PYTHONPATH") != std::string_view::npos) {
            out.push_back(failed(std::string(env_file), "no-pythonpath",
                                 "line " + std::to_string(line_no) + " sets PYTHONPATH ('" + std::string(line) +
                                     "'); the native runner needs no Python"));
            found = true;
        }
        start = end + 1;
    }
    if (!found) out.push_back(ok(std::string(env_file), "no-pythonpath", "no PYTHONPATH setting"));
}

}  // namespace

std::string PkgInfo::first(std::string_view key) const {
    for (const auto& [k, v] : fields)
        if (k == key) return v;
    return {};
}

std::vector<std::string> PkgInfo::all(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : fields)
        if (k == key) out.push_back(v);
    return out;
}

PkgInfo parse_pkginfo(std::string_view text) {
    PkgInfo info;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line = trim(text.substr(start, end - start));
        start = end + 1;
        if (line.empty() || line.front() == '#') continue;
        // Keys have no '=', values may ("depend = glibc>=2.40"): split on the first one.
        const std::size_t eq = line.find('=');
        const std::string_view key = eq == std::string_view::npos ? std::string_view() : trim(line.substr(0, eq));
        if (key.empty()) {
            info.malformed.emplace_back(line);
            continue;
        }
        info.fields.emplace_back(std::string(key), std::string(trim(line.substr(eq + 1))));
    }
    return info;
}

std::vector<LayoutCheck> check_layout(const PkgInfo& pkginfo, const std::vector<sys::ArchiveEntry>& entries,
                                      const std::map<std::string, std::string, std::less<>>& texts) {
    std::vector<LayoutCheck> out;
    check_pkginfo(pkginfo, entries, out);
    for (const auto& row : package_layout) check_row(row, pkginfo, entries, out);
    check_entries(entries, out);
    check_env_file(texts, out);
    return out;
}

std::string mode_string(std::uint32_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

}  // namespace pkg
