// pkg::sys::AlpmHandle against the real libalpm: version, vercmp, loading a makepkg package, local db.
#include <doctest/doctest.h>

#include "package_builder.h"
#include "pkg/sys/alpm_handle.h"
#include "support/temp_tree.h"

using pkg::sys::AlpmHandle;

TEST_CASE("alpm: the linked libalpm is one this code supports") {
    const std::string version = pkg::sys::alpm_library_version();
    CAPTURE(version);
    CHECK_FALSE(version.empty());
    CHECK(pkg::sys::alpm_version_supported(version));
}

TEST_CASE("alpm: version support covers libalpm 13 to 15 only") {
    CHECK(pkg::sys::alpm_version_supported("13.0.2"));
    CHECK(pkg::sys::alpm_version_supported("14.0.0"));
    CHECK(pkg::sys::alpm_version_supported("15.0.0"));
    CHECK_FALSE(pkg::sys::alpm_version_supported("12.0.0"));
    CHECK_FALSE(pkg::sys::alpm_version_supported("16.0.0"));
    CHECK_FALSE(pkg::sys::alpm_version_supported(""));
    CHECK_FALSE(pkg::sys::alpm_version_supported("x13"));
}

TEST_CASE("alpm: vercmp orders versions as pacman does") {
    const struct {
        const char* a;
        const char* b;
        int sign;
    } rows[] = {
        {"0.9.0-1", "0.10.0-1", -1},    {"1:0.1", "2.0", 1},           {"0.5.7rc1", "0.5.7", -1}, {"1.0-1", "1.0", 0},
        {"0.32.15-1", "0.32.15-2", -1}, {"0.32.15-1", "0.32.15-1", 0},
    };
    for (const auto& row : rows) {
        CAPTURE(row.a);
        CAPTURE(row.b);
        const int got = pkg::sys::vercmp(row.a, row.b);
        CHECK((got > 0) - (got < 0) == row.sign);
    }
}

TEST_CASE("alpm: a root that does not exist is an error naming it") {
    const auto handle = AlpmHandle::open("/nonexistent/root", "/nonexistent/root/var/lib/pacman");
    REQUIRE_FALSE(handle.ok());
    CHECK(handle.error().message.find("/nonexistent/root") != std::string::npos);
    CHECK(handle.error().message.find("could not find or read directory") != std::string::npos);
}

TEST_CASE("alpm: loads a makepkg package with its file list, modes and backup list") {
    test_support::TempTree tree;
    std::filesystem::create_directories(tree.root() / "var/lib/pacman");
    auto handle = AlpmHandle::open(tree.root(), tree.root() / "var/lib/pacman");
    REQUIRE(handle.ok());
    const auto pkg = handle->load_package(test_pkg::built_package(test_pkg::Variant::good));
    REQUIRE(pkg.ok());
    CHECK(pkg->name == "ollama-airllm-rocm");
    CHECK(pkg->version == "0.32.15-1");
    CHECK(pkg->arch == "x86_64");
    CHECK_FALSE(pkg->has_scriptlet);
    const auto* ollama = pkg->find_file("usr/bin/ollama");
    REQUIRE(ollama);
    CHECK((ollama->mode & 07777) == 0755);
    const auto* dir = pkg->find_file("usr/lib/ollama/");
    REQUIRE(dir);
    CHECK((dir->mode & 0170000) == 0040000);
    CHECK_FALSE(pkg->find_file(".PKGINFO"));
    REQUIRE(pkg->backup.size() == 1);
    CHECK(pkg->backup[0].path == "etc/default/ollama");
    CHECK(pkg->find_backup("etc/default/ollama"));
}

TEST_CASE("alpm: a garbage package and an empty local database are errors or absences, not crashes") {
    test_support::TempTree tree;
    std::filesystem::create_directories(tree.root() / "var/lib/pacman");
    tree.write("garbage.pkg.tar.zst", std::string(2048, '\x5a'));
    auto handle = AlpmHandle::open(tree.root(), tree.root() / "var/lib/pacman");
    REQUIRE(handle.ok());
    const auto pkg = handle->load_package(tree.root() / "garbage.pkg.tar.zst");
    REQUIRE_FALSE(pkg.ok());
    CHECK(pkg.error().message.find("garbage.pkg.tar.zst: libalpm cannot load the package: ") != std::string::npos);

    const auto local = handle->local_package("ollama-airllm-rocm");
    REQUIRE(local.ok());
    CHECK_FALSE(local->has_value());
}
