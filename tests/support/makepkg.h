// Runs the real makepkg on a PKGBUILD folder the way CI can: as an unprivileged user when the tests
// run as root (makepkg refuses root), with a clean environment, zstd packages and -d (Debian's pacman
// knows no Arch dependencies).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "support/run_process.h"

namespace test_support {

// Makes `dir` and everything below it writable by the unprivileged build user.
void open_up_for_builder(const std::filesystem::path& dir);

// The argv prefix that runs a program as the build user with a clean environment: setpriv to nobody
// when we are root, `env -i` with PATH (`extra_path` first), HOME and LANG. Writes HOME/.gitconfig.
std::vector<std::string> as_build_user(const std::filesystem::path& home, const std::string& extra_path = "");

// `extra_path` is prepended to PATH (stand-in tools); `home` gets a .gitconfig trusting every repository,
// since the build user clones repositories that root created.
ProcessResult run_makepkg(const std::filesystem::path& dir, const std::vector<std::string>& args,
                          const std::filesystem::path& home, const std::string& extra_path = "");

// The one .pkg.tar.zst in `dir`, or an empty path.
std::filesystem::path find_package_file(const std::filesystem::path& dir);

}  // namespace test_support
