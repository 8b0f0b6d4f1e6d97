#include "probe/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "common/regular_file.h"

namespace probe {

namespace {

// Opens `relative` under the directory `root_fd` as if it were the file system's root: absolute links
// and ".." stay inside it (openat2 with RESOLVE_IN_ROOT, Linux 5.6), so a link in a --sysfs-root
// capture to /etc/... reads the capture's /etc, never the host's. -1 with errno when it fails.
int open_in_root(int root_fd, const std::filesystem::path& relative, int flags) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof how));
}

ReadResult from_errno(int err) {
    ReadResult r;
    r.reason = std::strerror(err);
    if (err == ENOENT || err == ENOTDIR)
        r.status = ReadStatus::absent;
    else if (err == EPERM || err == EACCES)
        r.status = ReadStatus::denied;
    else
        r.status = ReadStatus::failed;
    return r;
}

}  // namespace

std::filesystem::path SysfsTree::resolve(const std::filesystem::path& path) const {
    return root_ / path.relative_path();
}

std::string SysfsTree::display(const std::filesystem::path& path) const {
    if (root_ == "/" || root_.empty()) return path.string();
    return resolve(path).string();
}

ReadResult SysfsTree::read(const std::filesystem::path& path, std::size_t limit) const {
    // Non-blocking, and regular files only: a FIFO planted in a --sysfs-root tree blocked forever.
    const common::UniqueFd fd(open(path, O_RDONLY | O_NONBLOCK));
    if (fd.get() < 0) return from_errno(errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return from_errno(errno);
    if (!S_ISREG(st.st_mode)) {
        ReadResult bad;
        bad.reason = "not a regular file";
        return bad;
    }
    ReadResult r;
    r.status = ReadStatus::ok;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return from_errno(errno);
        }
        if (n == 0) break;
        r.text.append(buf, static_cast<std::size_t>(n));
        if (r.text.size() > limit) {
            r.status = ReadStatus::failed;
            r.reason = "larger than " + std::to_string(limit) + " bytes, not a sysfs attribute";
            r.text.clear();
            return r;
        }
    }
    return r;
}

int SysfsTree::open(const std::filesystem::path& path, int flags) const {
    if (root_.empty() || root_ == "/") return ::open(path.c_str(), flags | O_CLOEXEC);
    const common::UniqueFd root(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root.get() < 0) return -1;
    const int fd = open_in_root(root.get(), path.relative_path(), flags);
    if (fd >= 0 || errno != ENOSYS) return fd;
    // No openat2 (a kernel before 5.6, or a sandbox that filters it): follow links, then refuse
    // what ends up outside the root.
    std::error_code ec;
    const auto inside = std::filesystem::weakly_canonical(resolve(path), ec)
                            .lexically_relative(std::filesystem::weakly_canonical(root_, ec));
    if (ec || inside.empty() || *inside.begin() == "..") {
        errno = EACCES;
        return -1;
    }
    return ::open(resolve(path).c_str(), flags | O_CLOEXEC);
}

bool SysfsTree::exists(const std::filesystem::path& path) const {
    const common::UniqueFd fd(open(path, O_PATH));
    return fd.get() >= 0;
}

std::vector<std::string> SysfsTree::list(const std::filesystem::path& path) const {
    std::vector<std::string> names;
    const int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return names;
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        return names;
    }
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    return names;
}

std::string SysfsTree::link_target_name(const std::filesystem::path& path) const {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(resolve(path), ec);
    if (ec) return {};
    return target.filename().string();
}

}  // namespace probe
