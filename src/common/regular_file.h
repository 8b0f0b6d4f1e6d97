// Reading files a user or a model folder hands us, only when they are regular files: a FIFO (or a
// device) in place of config.json, a safetensors file, a cache file or a sysfs property would block
// open() or read() forever. O_NONBLOCK lets open() return at once, and the file type is checked
// before the first read; on a regular file O_NONBLOCK changes nothing.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "common/result.h"

namespace common {

// Owns a file descriptor: closed when it goes, unless release() handed it on.
class UniqueFd {
  public:
    explicit UniqueFd(int fd = -1) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

  private:
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int fd_;
};

// `path` open for reading, or an error naming the path and why.
inline Result<UniqueFd> open_regular_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0) return make_error(path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    const bool stat_ok = ::fstat(fd.get(), &st) == 0;
    if (!stat_ok || !S_ISREG(st.st_mode))
        return make_error(path.string() + (stat_ok ? ": not a regular file (a FIFO or a device?)" : ": cannot stat"));
    return fd;
}

// The whole file, when it is a regular file.
inline Result<std::string> read_regular_file(const std::filesystem::path& path) {
    auto fd = open_regular_file(path);
    if (!fd) return fd.error();
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd->get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(path.string() + ": read error: " + std::strerror(errno));
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

}  // namespace common
