// Reads a built package file (.pkg.tar.zst and friends) without installing it: .PKGINFO, the
// compression, the control files present, the payload list, and the layout checks.
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"
#include "pkg/package_layout.h"
#include "pkg/sys/archive_reader.h"

namespace pkg {

struct InspectReport {
    std::filesystem::path file;
    std::string filter;  // libarchive's name of the compression: "zstd", "gzip", "xz", "none"
    PkgInfo pkginfo;
    bool has_buildinfo = false;
    bool has_mtree = false;
    bool has_install = false;
    std::vector<sys::ArchiveEntry> files;  // payload entries in archive order (no dot files)
    std::vector<LayoutCheck> checks;

    bool layout_ok() const;
    std::size_t failed_count() const;
};

// Reads the whole archive (a truncated one fails at its end). Errors name the file and libarchive's
// reason; a readable tar without .PKGINFO is an error too (not a pacman package).
common::Result<InspectReport> inspect_package(const std::filesystem::path& file);

void render_inspect_text(const InspectReport& report, std::ostream& out);
void render_inspect_json(const InspectReport& report, std::ostream& out);

}  // namespace pkg
