#include "package_builder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <stdexcept>

#include "support/makepkg.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace test_pkg {

namespace fs = std::filesystem;

namespace {

// put MODE PATH LINE...: one file under $pkgdir with the given lines and mode.
constexpr const char* pkgbuild_head = R"sh(pkgname=ollama-airllm-rocm
pkgver=0.32.15
pkgrel=1
pkgdesc='Test stand-in for the ollama-airllm-rocm package'
arch=('x86_64')
url='https://example.invalid/ollama-airllm-rocm'
license=('MIT')
)sh";

constexpr const char* put_function = R"sh(
put() {
  local mode=$1 path=$pkgdir/$2
  shift 2
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$@" > "$path"
  chmod "$mode" "$path"
}
)sh";

constexpr const char* common_files = R"sh(  put 0755 usr/bin/ollama '#!/bin/sh' 'echo ollama stand-in'
  put 0755 usr/bin/rocm-probe '#!/bin/sh' 'echo rocm-probe stand-in'
  put 0755 usr/bin/ollama-pkg '#!/bin/sh' 'echo ollama-pkg stand-in'
  put 0755 usr/lib/ollama/libggml-stub.so.1 'not really a library'
  # Incompressible bulk, so a truncated copy still opens and fails while its entries are read.
  head -c 400000 /dev/urandom > "$pkgdir/usr/lib/ollama/libggml-stub.so.1"
  ln -s libggml-stub.so.1 "$pkgdir/usr/lib/ollama/libggml-stub.so"
  put 0644 usr/lib/systemd/system/ollama.service '[Service]' 'ExecStart=/usr/bin/ollama serve'
  put 0644 usr/lib/sysusers.d/ollama.conf 'u ollama - "ollama" /var/lib/ollama'
  put 0644 usr/lib/tmpfiles.d/ollama.conf 'd /var/lib/ollama 0750 ollama ollama'
  put 0644 usr/share/licenses/ollama-airllm-rocm/LICENSE 'MIT License'
)sh";

std::string cache_key(const std::string& text) { return std::to_string(std::hash<std::string>{}(text)); }

// An exclusive flock on a file, released when this goes away.
class FileLock {
  public:
    explicit FileLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
        if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + path.string());
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock() { ::close(fd_); }

  private:
    int fd_;
};

fs::path build(const std::string& text) {
    const fs::path cache = OAR_PKG_CACHE;
    fs::create_directories(cache);
    const fs::path target = cache / (cache_key(text) + ".pkg.tar.zst");
    const FileLock lock(cache / ".lock");
    if (fs::exists(target)) return target;

    test_support::TempTree tree;
    const fs::path dir = tree.root() / "build";
    fs::create_directories(dir);
    tree.write("build/PKGBUILD", text);
    const auto r = test_support::run_makepkg(dir, {"-f", "-d"}, dir);
    const fs::path built = dir / "ollama-airllm-rocm-0.32.15-1-x86_64.pkg.tar.zst";
    if (r.exit_code != 0 || !fs::exists(built))
        throw std::runtime_error("makepkg failed (" + std::to_string(r.exit_code) + "):\n" + r.out + r.err);
    const fs::path partial = cache / (cache_key(text) + ".partial");
    fs::copy_file(built, partial, fs::copy_options::overwrite_existing);
    fs::rename(partial, target);
    return target;
}

}  // namespace

std::string pkgbuild_text(Variant variant) {
    std::string text = pkgbuild_head;
    if (variant != Variant::missing_env) text += "backup=('etc/default/ollama')\n";
    text += put_function;
    text += "\npackage() {\n";
    text += common_files;
    switch (variant) {
        case Variant::good:
            text += "  put 0644 etc/default/ollama 'OLLAMA_HOST=127.0.0.1:11434' '# PYTHONPATH is not needed'\n";
            break;
        case Variant::missing_env: break;
        case Variant::bad_entries:
            text += "  put 0644 etc/default/ollama 'OLLAMA_HOST=127.0.0.1:11434' 'PYTHONPATH=/opt/airllm'\n";
            text += "  put 0666 usr/lib/ollama/world-writable.txt 'anyone may write this'\n";
            text += "  put 0755 usr/local/bin/stray '#!/bin/sh'\n";
            break;
    }
    text += "}\n";
    return text;
}

const fs::path& built_package(Variant variant) {
    static std::map<Variant, fs::path> built;
    auto it = built.find(variant);
    if (it == built.end()) it = built.emplace(variant, build(pkgbuild_text(variant))).first;
    return it->second;
}

}  // namespace test_pkg
