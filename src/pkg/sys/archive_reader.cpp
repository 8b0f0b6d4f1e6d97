#include "pkg/sys/archive_reader.h"

#include <archive.h>
#include <archive_entry.h>

namespace pkg::sys {

const char* entry_type_name(EntryType type) {
    switch (type) {
        case EntryType::file: return "file";
        case EntryType::directory: return "directory";
        case EntryType::symlink: return "symlink";
        case EntryType::hardlink: return "hardlink";
        case EntryType::other: return "other";
    }
    return "other";
}

void ArchiveReader::Free::operator()(archive* a) const { archive_read_free(a); }

ArchiveReader::ArchiveReader(std::filesystem::path file, std::unique_ptr<archive, Free> handle)
    : file_(std::move(file)), handle_(std::move(handle)) {}

common::Error ArchiveReader::error(const std::string& what) const {
    const char* message = handle_ ? archive_error_string(handle_.get()) : nullptr;
    return common::make_error(file_.string() + ": " + what + ": " + (message ? message : "unknown libarchive error"));
}

common::Result<ArchiveReader> ArchiveReader::open(const std::filesystem::path& file) {
    std::unique_ptr<archive, Free> handle(archive_read_new());
    if (!handle) return common::make_error(file.string() + ": cannot allocate a libarchive reader");
    ArchiveReader reader(file, std::move(handle));
    archive* a = reader.handle_.get();
    // ARCHIVE_WARN: some filters (lrzip, grzip) would run an external program; that is fine.
    if (archive_read_support_filter_all(a) < ARCHIVE_WARN || archive_read_support_format_tar(a) < ARCHIVE_WARN)
        return reader.error("cannot set up libarchive");
    if (archive_read_open_filename(a, file.c_str(), 64 * 1024) != ARCHIVE_OK) return reader.error("cannot open");
    return reader;
}

common::Result<std::optional<ArchiveEntry>> ArchiveReader::next() {
    current_.reset();
    if (done_) return std::optional<ArchiveEntry>{};
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(handle_.get(), &entry);
    if (rc == ARCHIVE_EOF) {
        done_ = true;
        return std::optional<ArchiveEntry>{};
    }
    // ARCHIVE_WARN still delivers a usable header (e.g. an unknown pax keyword); anything worse ends it.
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        done_ = true;
        return error("cannot read the next entry");
    }
    ArchiveEntry out;
    const char* path = archive_entry_pathname(entry);
    out.path = path ? path : "";
    if (out.path.rfind("./", 0) == 0) out.path.erase(0, 2);
    const mode_t mode = archive_entry_mode(entry);
    out.mode = static_cast<std::uint32_t>(mode & 07777);
    switch (archive_entry_filetype(entry)) {
        case AE_IFREG: out.type = EntryType::file; break;
        case AE_IFDIR: out.type = EntryType::directory; break;
        case AE_IFLNK: out.type = EntryType::symlink; break;
        default: out.type = EntryType::other; break;
    }
    if (const char* hard = archive_entry_hardlink(entry)) {
        out.type = EntryType::hardlink;
        out.link_target = hard;
    } else if (const char* sym = archive_entry_symlink(entry)) {
        out.link_target = sym;
    }
    out.size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    current_ = out;
    return std::optional<ArchiveEntry>(std::move(out));
}

common::Result<std::string> ArchiveReader::read_data(std::size_t limit) {
    if (!current_) return common::make_error(file_.string() + ": no current entry to read");
    if (current_->size < 0 || static_cast<std::uint64_t>(current_->size) > limit)
        return common::make_error(file_.string() + ": " + current_->path + ": " + std::to_string(current_->size) +
                                  " bytes, more than the " + std::to_string(limit) + " this reader accepts");
    std::string data;
    data.reserve(static_cast<std::size_t>(current_->size));
    char buf[16 * 1024];
    for (;;) {
        const la_ssize_t n = archive_read_data(handle_.get(), buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            done_ = true;
            return error("cannot read " + current_->path);
        }
        data.append(buf, static_cast<std::size_t>(n));
        if (data.size() > limit)
            return common::make_error(file_.string() + ": " + current_->path + ": more data than the header says");
    }
    return data;
}

std::string ArchiveReader::filter_name() const {
    // Filter 0 is the outermost one; with no compression libarchive reports "none".
    const char* name = archive_filter_name(handle_.get(), 0);
    return name ? name : "none";
}

}  // namespace pkg::sys
