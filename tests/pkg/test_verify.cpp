// ollama-pkg verify with the real pacman (and fakeroot for the unprivileged run) on makepkg packages.
#include <doctest/doctest.h>

#include <unistd.h>

#include "package_builder.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

using test_pkg::built_package;
using test_pkg::Variant;
using test_support::run_process;

namespace {

test_support::ProcessResult verify(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), {test_pkg::ollama_pkg().string(), "verify"});
    return run_process(args, env);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const char* const all_steps[] = {"libalpm",
                                 "package metadata",
                                 "install",
                                 "local database and files",
                                 "pacman -Qkk",
                                 "upgrade keeps an edited etc/default/ollama",
                                 "remove keeps models and state"};

std::string scratch_from(const std::string& out) {
    const std::string marker = "pacman -U into ";
    const auto at = out.find(marker);
    if (at == std::string::npos) return {};
    return out.substr(at + marker.size(), out.find('\n', at) - at - marker.size());
}

}  // namespace

TEST_CASE("verify: a good package passes every step and the scratch root is removed") {
    const auto r = verify({built_package(Variant::good).string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    for (const char* step : all_steps) {
        CAPTURE(step);
        CHECK(contains(r.out, std::string("  ok       ") + step + ": "));
    }
    CHECK(contains(r.out, "libalpm 13."));
    CHECK(contains(r.out, "pacman -Qkk: ollama-airllm-rocm: "));
    CHECK(contains(r.out, " 0 altered files"));
    CHECK(contains(r.out, "edit kept on reinstall (no .pacnew); edit kept and etc/default/ollama.pacnew written"));
    CHECK(contains(r.out, "var/lib/ollama kept, edited etc/default/ollama saved as .pacsave"));
    CHECK(contains(r.out, "verify: ollama-airllm-rocm 0.32.15-1: all 7 steps ok\n"));
    CHECK_FALSE(contains(r.out, "FAILED"));
    const std::string root = scratch_from(r.out);
    REQUIRE_FALSE(root.empty());
    CHECK_FALSE(std::filesystem::exists(root));
}

TEST_CASE("verify: --keep ROOT leaves the root with the pacnew, pacsave and the stand-in model") {
    test_support::TempTree tree;
    const auto root = tree.root() / "scratch";
    const auto r = verify({built_package(Variant::good).string(), "--keep", root.string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, "scratch root kept at " + root.string() + "\n"));
    CHECK(std::filesystem::exists(root / "etc/default/ollama.pacnew"));
    CHECK(std::filesystem::exists(root / "etc/default/ollama.pacsave"));
    CHECK(contains(test_support::read_file(root / "etc/default/ollama.pacsave"), "OLLAMA_PKG_VERIFY_EDIT=1"));
    CHECK(std::filesystem::exists(root / "var/lib/ollama/models/blobs/sha256-ollama-pkg-verify"));
    CHECK_FALSE(std::filesystem::exists(root / "usr/bin/ollama"));
    CHECK(std::filesystem::is_directory(root / "var/lib/pacman/local"));

    // A kept root that is not empty is refused: verify needs a fresh one.
    const auto again = verify({built_package(Variant::good).string(), "--keep", root.string()});
    CHECK(again.exit_code == 2);
    CHECK(contains(again.err, "--keep " + root.string() + ": exists and is not an empty folder"));
}

TEST_CASE("verify: a package without etc/default/ollama in backup fails the upgrade step and exits 1") {
    const auto r = verify({built_package(Variant::missing_env).string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.out, "  ok       install: "));
    CHECK(contains(r.out, "  FAILED   upgrade keeps an edited etc/default/ollama: 1 problem\n"));
    CHECK(contains(r.out, "etc/default/ollama: not in the package's backup list"));
    CHECK(contains(r.out, ": 1 of 7 steps FAILED\n"));
    CHECK(contains(r.err, "ollama-pkg verify: upgrade keeps an edited etc/default/ollama: etc/default/ollama: not in"));
}

TEST_CASE("verify: a pacman that fails makes the install step fail and the rest skip") {
    const auto r = verify({built_package(Variant::good).string()}, {"PACMAN=/bin/false"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.out, "  FAILED   install: 1 problem\n"));
    CHECK(contains(r.out, "pacman exited with 1"));
    CHECK(contains(r.out, "  skipped  pacman -Qkk: not run: the package did not install\n"));
    CHECK(contains(r.out, ": 1 of 7 steps FAILED\n"));
}

TEST_CASE("verify: missing tools, unreadable packages and usage errors exit 2") {
    test_support::TempTree tree;
    tree.write("garbage.pkg.tar.zst", std::string(3000, '\x42'));
    const std::string good = built_package(Variant::good).string();
    const struct {
        std::vector<std::string> args;
        std::vector<std::string> env;
        std::string message;
    } rows[] = {
        {{good}, {"PACMAN=/nonexistent/pacman"}, "pacman: /nonexistent/pacman: no such program"},
        {{good}, {"PACMAN=no-such-pacman-xyz"}, "no-such-pacman-xyz: program not found in PATH"},
        {{(tree.root() / "garbage.pkg.tar.zst").string()}, {}, "garbage.pkg.tar.zst: libalpm cannot load the package"},
        {{"/nonexistent/x.pkg.tar.zst"}, {}, "/nonexistent/x.pkg.tar.zst: no such package file"},
        {{}, {}, "which package file?"},
        {{good, "--keep"}, {}, "--keep needs a folder"},
        {{good, "--bogus"}, {}, "unknown option '--bogus'"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.message);
        const auto r = verify(row.args, row.env);
        CHECK(r.exit_code == 2);
        CHECK(contains(r.err, row.message));
    }
    const auto help = verify({"--help"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "Environment: PACMAN, FAKEROOT"));
}

TEST_CASE("verify: an unprivileged user passes through fakeroot") {
    if (::geteuid() != 0) {
        // Already unprivileged: the plain good-package case runs through fakeroot.
        const auto r = verify({built_package(Variant::good).string()});
        CHECK(r.exit_code == 0);
        return;
    }
    test_support::TempTree tree;
    const auto tmp = tree.root() / "tmp";
    std::filesystem::create_directories(tmp);
    std::filesystem::permissions(tmp, std::filesystem::perms::all);  // where nobody's scratch root goes
    // The checkout may sit in a folder nobody cannot enter: run a copy of the binary on a copy of the package.
    tree.copy(test_pkg::ollama_pkg(), "ollama-pkg");
    tree.copy(built_package(Variant::good), "good.pkg.tar.zst");
    const auto ollama_pkg = (tree.root() / "ollama-pkg").string();
    const auto package = (tree.root() / "good.pkg.tar.zst").string();
    const auto r = run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env",
                                "TMPDIR=" + tmp.string(), ollama_pkg, "verify", package});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, "all 7 steps ok"));
    CHECK(contains(r.out, " 0 altered files"));

    // Without fakeroot an unprivileged pacman cannot install: the message says how to fix it.
    const auto no_fakeroot =
        run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env",
                     "FAKEROOT=/nonexistent/fakeroot", ollama_pkg, "verify", package});
    CHECK(no_fakeroot.exit_code == 2);
    CHECK(contains(no_fakeroot.err, "fakeroot (needed when not root): /nonexistent/fakeroot: no such program"));
    CHECK(contains(no_fakeroot.err, "set FAKEROOT to its path"));
}
