#include "probe/rocblas_kernels.h"

#include <algorithm>

#include "common/rocblas_library.h"

namespace probe {

namespace {

std::optional<RocblasKernels> read_dir(const SysfsTree& tree, const std::filesystem::path& dir) {
    const auto names = tree.list(dir);
    RocblasKernels kernels;
    kernels.dir = tree.display(dir);
    bool any_library = false;
    for (const auto& name : names) {
        if (name.rfind("TensileLibrary", 0) != 0) continue;
        any_library = true;
        for (auto& target : common::targets_in_file_name(name)) kernels.targets.insert(std::move(target));
    }
    if (!any_library) return std::nullopt;
    return kernels;
}

}  // namespace

std::optional<RocblasKernels> find_rocblas_kernels(const SysfsTree& tree, const std::string& explicit_dir,
                                                   const std::string& rocm_path) {
    // An explicit folder is a path on this machine, not inside a replayed capture.
    if (!explicit_dir.empty()) return read_dir(SysfsTree("/"), std::filesystem::absolute(explicit_dir));
    std::vector<std::filesystem::path> dirs;
    if (!rocm_path.empty()) dirs.emplace_back(std::filesystem::path(rocm_path) / "lib/rocblas/library");
    dirs.emplace_back("/opt/rocm/lib/rocblas/library");
    dirs.emplace_back("/usr/lib/rocblas/library");
    std::vector<std::string> versions = tree.list("/usr/lib/x86_64-linux-gnu/rocblas");
    std::sort(versions.rbegin(), versions.rend());
    for (const auto& v : versions)
        dirs.emplace_back(std::filesystem::path("/usr/lib/x86_64-linux-gnu/rocblas") / v / "library");
    for (const auto& dir : dirs)
        if (auto kernels = read_dir(tree, dir)) return kernels;
    return std::nullopt;
}

}  // namespace probe
