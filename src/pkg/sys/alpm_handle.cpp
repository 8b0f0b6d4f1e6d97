#include "pkg/sys/alpm_handle.h"

#include <alpm.h>

#include <charconv>

namespace pkg::sys {

namespace {

struct PkgFree {
    void operator()(alpm_pkg_t* pkg) const { alpm_pkg_free(pkg); }
};

std::string str(const char* s) { return s ? s : ""; }

// Copies what we use out of a package; `pkg` stays owned by the caller (or the local database).
AlpmPackage copy_package(alpm_pkg_t* pkg) {
    AlpmPackage out;
    out.name = str(alpm_pkg_get_name(pkg));
    out.version = str(alpm_pkg_get_version(pkg));
    out.base = str(alpm_pkg_get_base(pkg));
    out.arch = str(alpm_pkg_get_arch(pkg));
    out.description = str(alpm_pkg_get_desc(pkg));
    out.installed_size = static_cast<std::int64_t>(alpm_pkg_get_isize(pkg));
    out.has_scriptlet = alpm_pkg_has_scriptlet(pkg) != 0;
    if (const alpm_filelist_t* files = alpm_pkg_get_files(pkg)) {
        out.files.reserve(files->count);
        for (std::size_t i = 0; i < files->count; ++i) {
            const alpm_file_t& f = files->files[i];
            out.files.push_back({str(f.name), static_cast<std::int64_t>(f.size), static_cast<std::uint32_t>(f.mode)});
        }
    }
    for (alpm_list_t* it = alpm_pkg_get_backup(pkg); it; it = alpm_list_next(it)) {
        const auto* b = static_cast<const alpm_backup_t*>(it->data);
        out.backup.push_back({str(b->name), str(b->hash)});
    }
    return out;
}

}  // namespace

const AlpmFile* AlpmPackage::find_file(std::string_view path) const {
    for (const auto& f : files)
        if (f.path == path) return &f;
    return nullptr;
}

const AlpmBackup* AlpmPackage::find_backup(std::string_view path) const {
    for (const auto& b : backup)
        if (b.path == path) return &b;
    return nullptr;
}

std::string alpm_library_version() { return str(alpm_version()); }

bool alpm_version_supported(std::string_view version) {
    int major = 0;
    const auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), major);
    return ec == std::errc() && end != version.data() && major >= 13 && major <= 15;
}

int vercmp(const std::string& a, const std::string& b) { return alpm_pkg_vercmp(a.c_str(), b.c_str()); }

void AlpmHandle::Release::operator()(alpm_handle_t* handle) const { alpm_release(handle); }

std::string AlpmHandle::last_error() const { return str(alpm_strerror(alpm_errno(handle_.get()))); }

common::Result<AlpmHandle> AlpmHandle::open(const std::filesystem::path& root, const std::filesystem::path& dbpath) {
    alpm_errno_t err = ALPM_ERR_OK;
    alpm_handle_t* handle = alpm_initialize(root.c_str(), dbpath.c_str(), &err);
    if (!handle)
        return common::make_error("libalpm: cannot open root " + root.string() + " with database " + dbpath.string() +
                                  ": " + str(alpm_strerror(err)));
    return AlpmHandle(std::unique_ptr<alpm_handle_t, Release>(handle));
}

common::Result<AlpmPackage> AlpmHandle::load_package(const std::filesystem::path& file) {
    alpm_pkg_t* raw = nullptr;
    // full = 1 reads the whole archive (the integrity check pacman does) and the file list; level 0
    // asks for no signature, as for a package built locally.
    if (alpm_pkg_load(handle_.get(), file.c_str(), 1, 0, &raw) != 0 || !raw) {
        const std::string reason = last_error();
        if (raw) alpm_pkg_free(raw);
        return common::make_error(file.string() + ": libalpm cannot load the package: " + reason);
    }
    const std::unique_ptr<alpm_pkg_t, PkgFree> pkg(raw);
    return copy_package(pkg.get());
}

common::Result<std::optional<AlpmPackage>> AlpmHandle::local_package(const std::string& name) {
    alpm_db_t* db = alpm_get_localdb(handle_.get());
    if (!db) return common::make_error("libalpm: no local database: " + last_error());
    alpm_pkg_t* pkg = alpm_db_get_pkg(db, name.c_str());
    if (!pkg) {
        if (alpm_errno(handle_.get()) == ALPM_ERR_PKG_NOT_FOUND) return std::optional<AlpmPackage>{};
        return common::make_error("libalpm: cannot look up " + name + " in the local database: " + last_error());
    }
    // Packages from a database belong to it: copied, not freed.
    return std::optional<AlpmPackage>(copy_package(pkg));
}

common::Result<std::optional<AlpmPackage>> AlpmHandle::local_satisfier(const std::string& dependency) {
    alpm_db_t* db = alpm_get_localdb(handle_.get());
    if (!db) return common::make_error("libalpm: no local database: " + last_error());
    alpm_pkg_t* pkg = alpm_find_satisfier(alpm_db_get_pkgcache(db), dependency.c_str());
    if (!pkg) return std::optional<AlpmPackage>{};
    return std::optional<AlpmPackage>(copy_package(pkg));
}

common::Result<std::size_t> AlpmHandle::local_package_count() {
    alpm_db_t* db = alpm_get_localdb(handle_.get());
    if (!db) return common::make_error("libalpm: no local database: " + last_error());
    std::size_t count = 0;
    for (alpm_list_t* i = alpm_db_get_pkgcache(db); i; i = i->next) ++count;
    return count;
}

}  // namespace pkg::sys
