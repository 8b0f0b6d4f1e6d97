// libalpm behind one owner: a handle on a root and database folder, packages loaded from files and
// looked up in the local database, copied into plain values so no alpm pointer outlives its owner.
// Only calls that libalpm 13 (Debian 12, pacman 6.0) and libalpm 15 (Arch, pacman 7) share are used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct __alpm_handle_t;

namespace pkg::sys {

struct AlpmFile {
    std::string path;        // as libalpm stores it: relative, directories end in '/'
    std::int64_t size = 0;   // 0 in a local database (it keeps names only)
    std::uint32_t mode = 0;  // permission and type bits (st_mode); 0 in a local database
};

struct AlpmBackup {
    std::string path;  // "etc/default/ollama"
    std::string hash;  // md5 of the file as installed; empty in a package file
};

struct AlpmPackage {
    std::string name;
    std::string version;  // [epoch:]pkgver-pkgrel
    std::string base;
    std::string arch;
    std::string description;
    std::int64_t installed_size = 0;
    bool has_scriptlet = false;
    std::vector<AlpmFile> files;  // sorted by path (libalpm keeps them sorted)
    std::vector<AlpmBackup> backup;

    const AlpmFile* find_file(std::string_view path) const;
    const AlpmBackup* find_backup(std::string_view path) const;
};

// alpm_version(): "13.0.2" on Debian 12.
std::string alpm_library_version();
// The majors this code is written and tested against: 13 (pacman 6.0) to 15 (pacman 7).
bool alpm_version_supported(std::string_view version);
// alpm_pkg_vercmp: <0, 0, >0 as pacman orders versions.
int vercmp(const std::string& a, const std::string& b);

class AlpmHandle {
  public:
    // alpm_initialize: `root` and `dbpath` must exist. The error names both and libalpm's reason.
    static common::Result<AlpmHandle> open(const std::filesystem::path& root, const std::filesystem::path& dbpath);

    AlpmHandle(AlpmHandle&&) noexcept = default;
    AlpmHandle& operator=(AlpmHandle&&) noexcept = default;
    ~AlpmHandle() = default;

    // alpm_pkg_load(full, no signature check): metadata and the full file list with modes.
    common::Result<AlpmPackage> load_package(const std::filesystem::path& file);
    // The installed package named `name`, or no value when the local database has none.
    common::Result<std::optional<AlpmPackage>> local_package(const std::string& name);
    // The installed package that satisfies a dependency string ("go", "cmake>=3.25", a provided name),
    // as alpm_find_satisfier decides; no value when none does.
    common::Result<std::optional<AlpmPackage>> local_satisfier(const std::string& dependency);
    // How many packages the local database holds (0 on a system that is not managed by pacman).
    common::Result<std::size_t> local_package_count();

  private:
    struct Release {
        void operator()(__alpm_handle_t* handle) const;
    };
    explicit AlpmHandle(std::unique_ptr<__alpm_handle_t, Release> handle) : handle_(std::move(handle)) {}
    std::string last_error() const;

    std::unique_ptr<__alpm_handle_t, Release> handle_;
};

}  // namespace pkg::sys
