// pkg::sys::ArchiveReader on a package built by makepkg, and on truncated and garbage files.
#include <doctest/doctest.h>

#include <fstream>
#include <map>

#include "package_builder.h"
#include "pkg/sys/archive_reader.h"
#include "support/temp_tree.h"

using pkg::sys::ArchiveEntry;
using pkg::sys::ArchiveReader;
using pkg::sys::EntryType;

namespace {

std::map<std::string, ArchiveEntry> all_entries(ArchiveReader& reader) {
    std::map<std::string, ArchiveEntry> out;
    for (;;) {
        auto next = reader.next();
        REQUIRE(next.ok());
        if (!*next) break;
        out.emplace((*next)->path, **next);
    }
    return out;
}

// Copies the first `keep` bytes of `from` to `to`.
void truncate_copy(const std::filesystem::path& from, const std::filesystem::path& to, std::size_t keep) {
    const std::string data = test_support::read_file(from);
    REQUIRE(data.size() > keep);
    std::ofstream(to, std::ios::binary) << data.substr(0, keep);
}

}  // namespace

TEST_CASE("archive reader: lists a makepkg package with types, modes, sizes and link targets") {
    auto reader = ArchiveReader::open(test_pkg::built_package(test_pkg::Variant::good));
    REQUIRE(reader.ok());
    const auto entries = all_entries(*reader);
    CHECK(reader->filter_name() == "zstd");
    for (const char* control : {".PKGINFO", ".BUILDINFO", ".MTREE"}) CHECK(entries.count(control) == 1);

    const auto& ollama = entries.at("usr/bin/ollama");
    CHECK(ollama.type == EntryType::file);
    CHECK(ollama.mode == 0755);
    CHECK(ollama.size == static_cast<std::int64_t>(std::string("#!/bin/sh\necho ollama stand-in\n").size()));

    const auto& dir = entries.at("usr/lib/ollama/");
    CHECK(dir.type == EntryType::directory);
    CHECK(dir.mode == 0755);

    const auto& link = entries.at("usr/lib/ollama/libggml-stub.so");
    CHECK(link.type == EntryType::symlink);
    CHECK(link.link_target == "libggml-stub.so.1");
    CHECK(entries.at("etc/default/ollama").mode == 0644);
}

TEST_CASE("archive reader: reads an entry's data on demand and enforces the size limit") {
    auto reader = ArchiveReader::open(test_pkg::built_package(test_pkg::Variant::good));
    REQUIRE(reader.ok());
    std::string pkginfo, env;
    bool limited = false;
    for (;;) {
        auto next = reader->next();
        REQUIRE(next.ok());
        if (!*next) break;
        if ((*next)->path == ".PKGINFO") {
            auto data = reader->read_data();
            REQUIRE(data.ok());
            pkginfo = *data;
        } else if ((*next)->path == "usr/share/licenses/ollama-airllm-rocm/LICENSE") {
            auto data = reader->read_data(4);
            REQUIRE_FALSE(data.ok());
            CHECK(data.error().message.find("LICENSE: 12 bytes, more than the 4 this reader accepts") !=
                  std::string::npos);
            limited = true;
        } else if ((*next)->path == "etc/default/ollama") {
            auto data = reader->read_data();
            REQUIRE(data.ok());
            env = *data;
        }
    }
    CHECK(pkginfo.find("pkgname = ollama-airllm-rocm\n") != std::string::npos);
    CHECK(pkginfo.find("backup = etc/default/ollama\n") != std::string::npos);
    CHECK(env == "OLLAMA_HOST=127.0.0.1:11434\n# PYTHONPATH is not needed\n");
    CHECK(limited);
}

TEST_CASE("archive reader: a missing file fails at open with libarchive's reason") {
    const auto reader = ArchiveReader::open("/nonexistent/pkg.pkg.tar.zst");
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().message.find("/nonexistent/pkg.pkg.tar.zst: cannot open") == 0);
}

TEST_CASE("archive reader: a garbage file is an error naming the file, not a crash") {
    test_support::TempTree tree;
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919 + 13) % 251);
    tree.write("garbage.pkg.tar.zst", garbage);
    auto reader = ArchiveReader::open(tree.root() / "garbage.pkg.tar.zst");
    std::string message;
    if (!reader.ok()) {
        message = reader.error().message;
    } else {
        auto next = reader->next();
        REQUIRE_FALSE(next.ok());
        message = next.error().message;
        // After an error the reader stays finished.
        auto again = reader->next();
        REQUIRE(again.ok());
        CHECK_FALSE(again->has_value());
    }
    CHECK(message.find((tree.root() / "garbage.pkg.tar.zst").string()) == 0);
    CHECK(message.find("Unrecognized archive format") != std::string::npos);
}

TEST_CASE("archive reader: a truncated package fails while reading, naming the file") {
    test_support::TempTree tree;
    const auto& good = test_pkg::built_package(test_pkg::Variant::good);
    const auto truncated = tree.root() / "truncated.pkg.tar.zst";
    truncate_copy(good, truncated, std::filesystem::file_size(good) / 2);
    auto reader = ArchiveReader::open(truncated);
    REQUIRE(reader.ok());
    std::string message;
    for (int guard = 0; guard < 1000 && message.empty(); ++guard) {
        auto next = reader->next();
        if (!next.ok()) {
            message = next.error().message;
        } else if (!*next) {
            break;
        } else if ((*next)->type == EntryType::file) {
            auto data = reader->read_data();
            if (!data.ok()) message = data.error().message;
        }
    }
    CHECK(message.find(truncated.string() + ": cannot read") == 0);
    CHECK(message.find("runcated") != std::string::npos);
}
