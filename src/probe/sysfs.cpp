#include "probe/sysfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace probe {

namespace {

class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

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
    const FileDescriptor fd(::open(resolve(path).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
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

bool SysfsTree::exists(const std::filesystem::path& path) const {
    std::error_code ec;
    return std::filesystem::exists(resolve(path), ec);
}

std::vector<std::string> SysfsTree::list(const std::filesystem::path& path) const {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(resolve(path), ec), end; !ec && it != end; it.increment(ec))
        names.push_back(it->path().filename().string());
    return names;
}

std::string SysfsTree::link_target_name(const std::filesystem::path& path) const {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(resolve(path), ec);
    if (ec) return {};
    return target.filename().string();
}

}  // namespace probe
