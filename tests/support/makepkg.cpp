#include "support/makepkg.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

namespace test_support {

void open_up_for_builder(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    constexpr auto all = fs::perms::owner_all | fs::perms::group_all | fs::perms::others_all;
    fs::permissions(dir, all, fs::perm_options::add);
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (entry.is_symlink()) continue;
        const auto add = entry.is_directory()
                             ? all
                             : fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                   fs::perms::group_write | fs::perms::others_read | fs::perms::others_write;
        fs::permissions(entry.path(), add, fs::perm_options::add);
    }
}

std::vector<std::string> as_build_user(const std::filesystem::path& home, const std::string& extra_path) {
    {
        std::ofstream gitconfig(home / ".gitconfig");
        gitconfig << "[safe]\n\tdirectory = *\n[init]\n\tdefaultBranch = main\n";
    }
    open_up_for_builder(home);
    std::vector<std::string> argv;
    if (::geteuid() == 0) argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    const std::string path = (extra_path.empty() ? "" : extra_path + ":") + "/usr/local/bin:/usr/bin:/bin";
    // A clean environment: nothing of the test runner's (or an outer makepkg's) settings leaks in.
    // MAKEFLAGS as an Arch user's makepkg.conf sets it: builds use every core.
    const std::vector<std::string> env = {
        "/usr/bin/env",
        "-i",
        "PATH=" + path,
        "HOME=" + home.string(),
        "LANG=C.UTF-8",
        "PKGEXT=.pkg.tar.zst",
        "MAKEFLAGS=-j" + std::to_string(std::max(1u, std::thread::hardware_concurrency()))};
    argv.insert(argv.end(), env.begin(), env.end());
    return argv;
}

ProcessResult run_makepkg(const std::filesystem::path& dir, const std::vector<std::string>& args,
                          const std::filesystem::path& home, const std::string& extra_path) {
    auto argv = as_build_user(home, extra_path);
    const std::vector<std::string> makepkg = {"/bin/sh", "-c", "cd \"$0\" && exec makepkg \"$@\"", dir.string()};
    argv.insert(argv.end(), makepkg.begin(), makepkg.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
}

std::filesystem::path find_package_file(const std::filesystem::path& dir) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const auto name = entry.path().filename().string();
        if (name.size() > 12 && name.compare(name.size() - 12, 12, ".pkg.tar.zst") == 0) return entry.path();
    }
    return {};
}

}  // namespace test_support
