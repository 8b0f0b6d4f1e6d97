#include "common/atomic_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace common {

namespace {

Error errno_error(const std::filesystem::path& path, const char* what) {
    return make_error(path.string() + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

Result<Written> write_file_atomically(const std::filesystem::path& path, std::string_view contents, unsigned mode) {
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    std::string temp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
    const int fd = ::mkstemp(temp.data());
    if (fd < 0) return errno_error(path, "cannot create a temporary file beside it");

    // From here on the temporary file is removed on every failure, so nothing half-written remains.
    const auto fail = [&](const char* what) {
        const Error e = errno_error(path, what);
        ::close(fd);
        ::unlink(temp.c_str());
        return e;
    };
    std::size_t done = 0;
    while (done < contents.size()) {
        const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail("write failed");
        }
        done += static_cast<std::size_t>(n);
    }
    struct stat existing {};
    const mode_t final_mode =
        (mode == 0 && ::stat(path.c_str(), &existing) == 0) ? (existing.st_mode & 07777) : (mode ? mode : 0644);
    if (::fchmod(fd, final_mode) != 0) return fail("chmod failed");
    if (::fsync(fd) != 0) return fail("fsync failed");
    if (::close(fd) != 0) {
        ::unlink(temp.c_str());
        return errno_error(path, "close failed");
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const Error e = errno_error(path, "rename failed");
        ::unlink(temp.c_str());
        return e;
    }
    return Written{};
}

}  // namespace common
