// Reading a (compressed) tar archive with libarchive: one owner for the archive handle, entries in
// archive order, an entry's data read on demand. Every libarchive failure becomes an error that names
// the file and libarchive's message; a truncated or garbage file is an error, never a crash.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

struct archive;

namespace pkg::sys {

enum class EntryType { file, directory, symlink, hardlink, other };

const char* entry_type_name(EntryType type);

struct ArchiveEntry {
    std::string path;  // as stored, without a leading "./" ("usr/bin/ollama", "usr/lib/ollama/")
    EntryType type = EntryType::other;
    std::uint32_t mode = 0;   // permission bits only (07777)
    std::int64_t size = 0;    // bytes of data (0 for directories and links)
    std::string link_target;  // for symlinks and hard links
};

class ArchiveReader {
  public:
    // Opens `file` for reading (any compression filter libarchive knows, tar formats).
    static common::Result<ArchiveReader> open(const std::filesystem::path& file);

    ArchiveReader(ArchiveReader&&) noexcept = default;
    ArchiveReader& operator=(ArchiveReader&&) noexcept = default;
    ~ArchiveReader() = default;

    // The next entry, or no value at the end of the archive. After an error the reader is done.
    common::Result<std::optional<ArchiveEntry>> next();
    // The current entry's data; an entry larger than `limit` bytes is an error (nothing is read).
    common::Result<std::string> read_data(std::size_t limit = 1 << 20);

    // The outermost compression filter ("zstd", "gzip", "xz", "none"); valid after the first next().
    std::string filter_name() const;
    const std::filesystem::path& file() const { return file_; }

  private:
    struct Free {
        void operator()(archive* a) const;
    };
    ArchiveReader(std::filesystem::path file, std::unique_ptr<archive, Free> handle);
    common::Error error(const std::string& what) const;

    std::filesystem::path file_;
    std::unique_ptr<archive, Free> handle_;
    std::optional<ArchiveEntry> current_;
    bool done_ = false;
};

}  // namespace pkg::sys
