#include "probe/rocblas_kernels.h"

#include <algorithm>

namespace probe {

namespace {

bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::optional<RocblasKernels> read_dir(const SysfsTree& tree, const std::filesystem::path& dir) {
    const auto names = tree.list(dir);
    RocblasKernels kernels;
    kernels.dir = tree.display(dir);
    bool any_library = false;
    for (const auto& name : names) {
        if (name.rfind("TensileLibrary", 0) != 0) continue;
        any_library = true;
        for (auto& target : targets_in_file_name(name)) kernels.targets.insert(std::move(target));
    }
    if (!any_library) return std::nullopt;
    return kernels;
}

}  // namespace

std::vector<std::string> targets_in_file_name(const std::string& name) {
    std::vector<std::string> targets;
    for (std::size_t pos = name.find("gfx"); pos != std::string::npos; pos = name.find("gfx", pos + 3)) {
        std::size_t end = pos + 3;
        while (end < name.size() && is_hex_lower(name[end])) ++end;
        // A real target has 3 or more characters after "gfx" and ends at a separator, not in a word.
        if (end - pos < 6) continue;
        if (end < name.size() && name[end] != '.' && name[end] != '_' && name[end] != '-' && name[end] != ':') continue;
        targets.push_back(name.substr(pos, end - pos));
    }
    return targets;
}

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
