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

#include "common/result.h"

namespace common {

// A descriptor of `path` open for reading, or an error naming the path and why. The caller closes it.
inline Result<int> open_regular_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return make_error(path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    const bool stat_ok = ::fstat(fd, &st) == 0;
    if (!stat_ok || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(path.string() + (stat_ok ? ": not a regular file (a FIFO or a device?)" : ": cannot stat"));
    }
    return fd;
}

// The whole file, when it is a regular file.
inline Result<std::string> read_regular_file(const std::filesystem::path& path) {
    auto fd = open_regular_file(path);
    if (!fd) return fd.error();
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(*fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(*fd);
            return make_error(path.string() + ": read error: " + std::strerror(err));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(*fd);
    return out;
}

}  // namespace common
