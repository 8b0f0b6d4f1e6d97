#include "pkg/inspect.h"

#include <algorithm>
#include <iomanip>
#include <nlohmann/json.hpp>

namespace pkg {

namespace {

const char* status_word(CheckStatus s) {
    switch (s) {
        case CheckStatus::ok: return "ok";
        case CheckStatus::failed: return "FAILED";
        case CheckStatus::skipped: return "skipped";
    }
    return "FAILED";
}

char type_letter(sys::EntryType t) {
    switch (t) {
        case sys::EntryType::file: return '-';
        case sys::EntryType::directory: return 'd';
        case sys::EntryType::symlink: return 'l';
        case sys::EntryType::hardlink: return 'h';
        case sys::EntryType::other: return '?';
    }
    return '?';
}

}  // namespace

bool InspectReport::layout_ok() const { return failed_count() == 0; }

std::size_t InspectReport::failed_count() const {
    return static_cast<std::size_t>(std::count_if(
        checks.begin(), checks.end(), [](const LayoutCheck& c) { return c.status == CheckStatus::failed; }));
}

common::Result<InspectReport> inspect_package(const std::filesystem::path& file) {
    auto reader = sys::ArchiveReader::open(file);
    if (!reader) return reader.error();
    InspectReport report;
    report.file = file;
    bool has_pkginfo = false;
    std::map<std::string, std::string, std::less<>> texts;
    for (;;) {
        auto next = reader->next();
        if (!next) return next.error();
        if (!*next) break;
        const sys::ArchiveEntry& entry = **next;
        if (report.filter.empty()) report.filter = reader->filter_name();
        if (entry.path == ".PKGINFO") {
            auto text = reader->read_data();
            if (!text) return text.error();
            report.pkginfo = parse_pkginfo(*text);
            has_pkginfo = true;
        } else if (entry.path == ".BUILDINFO") {
            report.has_buildinfo = true;
        } else if (entry.path == ".MTREE") {
            report.has_mtree = true;
        } else if (entry.path == ".INSTALL") {
            report.has_install = true;
        } else if (!entry.path.empty() && entry.path.front() == '.') {
            // Other control files (.CHANGELOG) are not part of the payload.
        } else {
            const bool wanted =
                std::find(std::begin(files_to_read), std::end(files_to_read), entry.path) != std::end(files_to_read);
            if (wanted && entry.type == sys::EntryType::file) {
                auto text = reader->read_data();
                if (!text) return text.error();
                texts.emplace(entry.path, std::move(*text));
            }
            report.files.push_back(entry);
        }
    }
    if (!has_pkginfo)
        return common::make_error(file.string() + ": not a pacman package: no .PKGINFO entry in the archive");
    if (report.filter.empty()) report.filter = reader->filter_name();
    report.checks = check_layout(report.pkginfo, report.files, texts);
    return report;
}

void render_inspect_text(const InspectReport& report, std::ostream& out) {
    out << "package:      " << report.file.string() << '\n';
    out << "compression:  " << report.filter << '\n';
    out << "control:      .PKGINFO yes, .BUILDINFO " << (report.has_buildinfo ? "yes" : "no") << ", .MTREE "
        << (report.has_mtree ? "yes" : "no") << ", .INSTALL " << (report.has_install ? "yes" : "no") << '\n';
    out << "\n.PKGINFO:\n";
    for (const auto& [key, value] : report.pkginfo.fields) out << "  " << key << " = " << value << '\n';
    out << "\nfiles (" << report.files.size() << "):\n";
    for (const auto& f : report.files) {
        out << "  " << type_letter(f.type) << mode_string(f.mode) << ' ' << std::setw(10) << f.size << ' ' << f.path;
        if (!f.link_target.empty()) out << " -> " << f.link_target;
        out << '\n';
    }
    out << "\nlayout:\n";
    for (const auto& c : report.checks)
        out << "  " << std::left << std::setw(8) << status_word(c.status) << std::right << c.path << " [" << c.rule
            << "]: " << c.detail << '\n';
    const std::size_t failed = report.failed_count();
    if (failed == 0)
        out << "\nlayout ok\n";
    else
        out << '\n' << failed << (failed == 1 ? " layout check" : " layout checks") << " FAILED\n";
}

void render_inspect_json(const InspectReport& report, std::ostream& out) {
    using nlohmann::json;
    json pkginfo = json::object();
    for (const auto& [key, value] : report.pkginfo.fields) {
        // Keys that repeat (backup, depend, license, ...) are arrays; the rest are strings.
        const auto values = report.pkginfo.all(key);
        pkginfo[key] =
            values.size() > 1 || key == "backup" || key == "depend" || key == "license" ? json(values) : json(value);
    }
    json files = json::array();
    for (const auto& f : report.files) {
        json entry = {
            {"path", f.path}, {"type", sys::entry_type_name(f.type)}, {"mode", mode_string(f.mode)}, {"size", f.size}};
        if (!f.link_target.empty()) entry["link_target"] = f.link_target;
        files.push_back(std::move(entry));
    }
    json checks = json::array();
    for (const auto& c : report.checks)
        checks.push_back({{"path", c.path},
                          {"rule", c.rule},
                          {"status", c.status == CheckStatus::ok       ? "ok"
                                     : c.status == CheckStatus::failed ? "failed"
                                                                       : "skipped"},
                          {"detail", c.detail}});
    const json doc = {
        {"file", report.file.string()},
        {"compression", report.filter},
        {"control",
         {{"pkginfo", true},
          {"buildinfo", report.has_buildinfo},
          {"mtree", report.has_mtree},
          {"install", report.has_install}}},
        {"pkginfo", pkginfo},
        {"files", files},
        {"checks", checks},
        {"layout_ok", report.layout_ok()},
    };
    out << doc.dump(2) << '\n';
}

}  // namespace pkg
