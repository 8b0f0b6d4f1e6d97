// ollama-pkg inspect as users run it, on packages built by makepkg and on broken files.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "package_builder.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

using test_pkg::built_package;
using test_pkg::Variant;
using test_support::run_process;

namespace {

test_support::ProcessResult inspect(std::vector<std::string> args) {
    args.insert(args.begin(), {test_pkg::ollama_pkg().string(), "inspect"});
    return run_process(args);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("inspect: a good package exits 0 with .PKGINFO, compression, control files, files and layout") {
    const auto& file = built_package(Variant::good);
    const auto r = inspect({file.string()});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(contains(r.out, "package:      " + file.string() + "\n"));
    CHECK(contains(r.out, "compression:  zstd\n"));
    CHECK(contains(r.out, "control:      .PKGINFO yes, .BUILDINFO yes, .MTREE yes, .INSTALL no\n"));
    CHECK(contains(r.out, "  pkgname = ollama-airllm-rocm\n"));
    CHECK(contains(r.out, "  pkgver = 0.32.15-1\n"));
    CHECK(contains(r.out, "  backup = etc/default/ollama\n"));
    CHECK(contains(r.out, "  -0755         31 usr/bin/ollama\n"));
    CHECK(contains(r.out, "  d0755          0 usr/lib/ollama/\n"));
    CHECK(contains(r.out, "usr/lib/ollama/libggml-stub.so -> libggml-stub.so.1\n"));
    CHECK(contains(r.out, "  ok      etc/default/ollama [backup]: listed in .PKGINFO backup\n"));
    CHECK(contains(r.out, "\nlayout ok\n"));
    CHECK_FALSE(contains(r.out, "FAILED"));
}

TEST_CASE("inspect: --json prints one object with the same facts") {
    const auto r = inspect({"--json", built_package(Variant::good).string()});
    CHECK(r.exit_code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["compression"] == "zstd");
    CHECK(doc["layout_ok"] == true);
    CHECK(doc["pkginfo"]["pkgname"] == "ollama-airllm-rocm");
    CHECK(doc["pkginfo"]["backup"] == nlohmann::json::array({"etc/default/ollama"}));
    CHECK(doc["control"]["mtree"] == true);
    CHECK(doc["control"]["install"] == false);
    bool saw_ollama = false;
    for (const auto& f : doc["files"])
        if (f["path"] == "usr/bin/ollama") saw_ollama = f["mode"] == "0755" && f["type"] == "file";
    CHECK(saw_ollama);
    for (const auto& c : doc["checks"]) CHECK(c["status"] != "failed");
}

TEST_CASE("inspect: a package without etc/default/ollama exits 1 naming the file and the rules") {
    const auto r = inspect({built_package(Variant::missing_env).string()});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.out, "FAILED  etc/default/ollama [required]: missing from the package (expected a file 0644)"));
    CHECK(contains(r.out, "FAILED  etc/default/ollama [backup]: not listed in .PKGINFO backup"));
    CHECK(contains(r.out, "\n2 layout checks FAILED\n"));
    CHECK(contains(r.err, "ollama-pkg inspect: etc/default/ollama: required: missing from the package"));
    CHECK(contains(r.err, "ollama-pkg inspect: etc/default/ollama: backup: not listed"));
}

TEST_CASE("inspect: world-writable, usr/local and PYTHONPATH problems each exit 1 with path and rule") {
    const auto r = inspect({built_package(Variant::bad_entries).string()});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "ollama-pkg inspect: usr/lib/ollama/world-writable.txt: world-writable: mode 0666"));
    CHECK(contains(r.err,
                   "ollama-pkg inspect: usr/local/bin/stray: forbidden-dir: nothing may be installed under "
                   "/usr/local/"));
    CHECK(contains(r.err,
                   "ollama-pkg inspect: etc/default/ollama: no-pythonpath: line 2 sets PYTHONPATH "
                   "('PYTHONPATH=/opt/airllm')"));
    // The symlink (mode 0777) is not reported.
    CHECK_FALSE(contains(r.err, "libggml-stub.so:"));
    const auto json = inspect({built_package(Variant::bad_entries).string(), "--json"});
    CHECK(json.exit_code == 1);
    CHECK(nlohmann::json::parse(json.out)["layout_ok"] == false);
}

TEST_CASE("inspect: a truncated package exits 2 naming the file and libarchive's error") {
    test_support::TempTree tree;
    const auto& good = built_package(Variant::good);
    const std::string data = test_support::read_file(good);
    const auto truncated = tree.root() / "truncated.pkg.tar.zst";
    std::ofstream(truncated, std::ios::binary) << data.substr(0, data.size() * 2 / 3);
    const auto r = inspect({truncated.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(contains(r.err, "ollama-pkg inspect: error: " + truncated.string() + ": cannot read"));
    CHECK(contains(r.err, "runcated"));
    CHECK(contains(r.err, "is it a complete package built by makepkg?"));
}

TEST_CASE("inspect: garbage, empty and missing files exit 2 with a clear message") {
    test_support::TempTree tree;
    tree.write("garbage.pkg.tar.zst", std::string("this is not a package\n") + std::string(1000, '\x01'));
    tree.write("empty.pkg.tar.zst", "");
    const struct {
        std::string file;
        std::string message;
    } rows[] = {
        {(tree.root() / "garbage.pkg.tar.zst").string(), "Unrecognized archive format"},
        {(tree.root() / "empty.pkg.tar.zst").string(), "empty.pkg.tar.zst: "},
        {"/nonexistent/x.pkg.tar.zst", "/nonexistent/x.pkg.tar.zst: cannot open: Failed to open"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.file);
        const auto r = inspect({row.file});
        CHECK(r.exit_code == 2);
        CHECK(contains(r.err, "ollama-pkg inspect: error: " + row.file));
        CHECK(contains(r.err, row.message));
    }
}

TEST_CASE("inspect: a readable tar without .PKGINFO exits 2 as not a pacman package") {
    test_support::TempTree tree;
    tree.write("payload/usr/bin/ollama", "#!/bin/sh\n");
    const auto archive = tree.root() / "plain.tar.zst";
    const auto made = run_process(
        {"/usr/bin/bsdtar", "--zstd", "-cf", archive.string(), "-C", (tree.root() / "payload").string(), "usr"});
    REQUIRE(made.exit_code == 0);
    const auto r = inspect({archive.string()});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, archive.string() + ": not a pacman package: no .PKGINFO entry in the archive"));
}

TEST_CASE("inspect: usage errors exit 2 and --help exits 0") {
    const struct {
        std::vector<std::string> args;
        const char* message;
    } rows[] = {
        {{}, "which package file?"},
        {{"--frobnicate", "x"}, "unknown option '--frobnicate'"},
        {{"a.pkg.tar.zst", "b.pkg.tar.zst"}, "one package file at a time"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.message);
        const auto r = inspect(row.args);
        CHECK(r.exit_code == 2);
        CHECK(contains(r.err, row.message));
        CHECK(r.out.empty());
    }
    const auto help = inspect({"--help"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "usage: ollama-pkg inspect FILE [--json]"));
    CHECK(contains(help.out, "Exit status: 0 layout ok, 1 a layout check failed, 2 usage error"));
}
