// A read-only memory mapping of a whole file, owned (unmapped and closed on destruction).
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

#include "common/result.h"

namespace runner {

class MappedFile {
  public:
    static common::Result<MappedFile> open(const std::filesystem::path& path);

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::filesystem::path& path() const { return path_; }

    // Tells the kernel which bytes are wanted soon (read ahead into the page cache) or no longer
    // (dropped from this mapping and from the page cache, so a RAM budget bounds both).
    void will_need(std::size_t offset, std::size_t length) const;
    void dont_need(std::size_t offset, std::size_t length) const;

  private:
    MappedFile() = default;
    void release();

    std::filesystem::path path_;
    int fd_ = -1;  // kept for posix_fadvise
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace runner
