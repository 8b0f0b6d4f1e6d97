#include "runner/model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/regular_file.h"

namespace runner {

common::Result<MappedFile> MappedFile::open(const std::filesystem::path& path) {
    auto opened = common::open_regular_file(path);
    if (!opened) return opened.error();
    const int fd = opened->release();
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return common::make_error(path.string() + ": cannot stat: " + std::strerror(err));
    }
    MappedFile file;
    file.path_ = path;
    file.size_ = static_cast<std::size_t>(st.st_size);
    if (file.size_ > 0) {
        void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            file.fd_ = -1;
            return common::make_error(path.string() + ": cannot map: " + std::strerror(err));
        }
        file.data_ = static_cast<const std::byte*>(p);
    }
    file.fd_ = fd;
    return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        fd_ = std::exchange(other.fd_, -1);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    data_ = nullptr;
    size_ = 0;
}

namespace {

// madvise wants page-aligned ranges.
void advise(const std::byte* data, std::size_t size, std::size_t offset, std::size_t length, int advice) {
    if (!data || offset >= size) return;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t begin = offset / page * page;
    const std::size_t end = std::min(size, offset + length);
    ::madvise(const_cast<std::byte*>(data) + begin, end - begin, advice);
}

}  // namespace

void MappedFile::will_need(std::size_t offset, std::size_t length) const {
    if (fd_ >= 0) ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_WILLNEED);
    advise(data_, size_, offset, length, MADV_WILLNEED);
}

void MappedFile::dont_need(std::size_t offset, std::size_t length) const {
    advise(data_, size_, offset, length, MADV_DONTNEED);
    if (fd_ >= 0) ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
}

}  // namespace runner
