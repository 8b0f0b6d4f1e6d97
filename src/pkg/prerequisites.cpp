#include "pkg/prerequisites.h"

#include <algorithm>

#include "pkg/sys/alpm_handle.h"

namespace pkg {

common::Result<Prerequisites> check_prerequisites(const Recipe& recipe, const std::filesystem::path& root,
                                                  const std::filesystem::path& dbpath) {
    Prerequisites p;
    std::error_code ec;
    // No local/ folder: pacman never installed anything here (a Debian machine running these tests).
    if (!std::filesystem::is_directory(dbpath / "local", ec)) {
        p.skipped.push_back("no pacman database at " + dbpath.string() +
                            " (not an Arch system?): depends, makedepends and checkdepends not checked, ROCm and Go "
                            "versions unknown; makepkg runs with --nodeps");
        return p;
    }
    auto handle = sys::AlpmHandle::open(root, dbpath);
    if (!handle) return handle.error();
    auto count = handle->local_package_count();
    if (!count) return count.error();
    if (*count == 0) {
        p.skipped.push_back("the pacman database at " + dbpath.string() +
                            " lists no installed packages (not an Arch system?): depends, makedepends and "
                            "checkdepends not checked, ROCm and Go versions unknown; makepkg runs with --nodeps");
        return p;
    }
    p.database_present = true;
    std::vector<std::string> wanted = recipe.makedepends;
    wanted.insert(wanted.end(), recipe.depends.begin(), recipe.depends.end());
    wanted.insert(wanted.end(), recipe.checkdepends.begin(), recipe.checkdepends.end());
    for (const auto& dep : wanted) {
        auto found = handle->local_satisfier(dep);
        if (!found) return found.error();
        if (*found)
            p.satisfied.push_back(dep + ": " + (**found).name + " " + (**found).version);
        else if (std::find(p.missing.begin(), p.missing.end(), dep) == p.missing.end())
            p.missing.push_back(dep);
    }
    for (const auto& [name, out] :
         {std::pair<const char*, std::string*>{"rocm-core", &p.rocm_version}, {"go", &p.go_version}}) {
        auto found = handle->local_satisfier(name);
        if (!found) return found.error();
        *out = *found ? (**found).version : "not installed";
    }
    return p;
}

std::string install_command(const std::vector<std::string>& missing) {
    std::string cmd = "sudo pacman -S --needed";
    for (const auto& m : missing) cmd += " " + m;
    return cmd;
}

}  // namespace pkg
