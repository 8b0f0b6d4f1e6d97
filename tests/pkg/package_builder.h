// Real packages for the inspect and verify tests, built by the real makepkg from tiny PKGBUILDs whose
// package() lays out the ollama-airllm-rocm files (shell-script stand-ins for the binaries).
// makepkg refuses root, so as root it runs as nobody (setpriv). Each variant is built once per
// build tree: test processes share a cache folder (locked with flock), keyed by the PKGBUILD text.
#pragma once

#include <filesystem>
#include <string>

namespace test_pkg {

enum class Variant {
    good,         // the full expected layout, backup=('etc/default/ollama'), a symlink and 400 kB of
                  // random bytes in usr/lib/ollama (so truncation bites after the first entries)
    missing_env,  // no etc/default/ollama and no backup=
    bad_entries,  // world-writable file, a file under usr/local, PYTHONPATH in etc/default/ollama
};

// The PKGBUILD makepkg builds for `variant`.
std::string pkgbuild_text(Variant variant);

// The built .pkg.tar.zst (throws with makepkg's output when the build fails).
const std::filesystem::path& built_package(Variant variant);

inline std::filesystem::path ollama_pkg() { return OAR_OLLAMA_PKG; }

}  // namespace test_pkg
