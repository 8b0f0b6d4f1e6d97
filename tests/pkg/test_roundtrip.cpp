// The recipe through real makepkg and pacman: a fixture upstream with Ollama's build interface (tag,
// superbuild switches, llama.cpp as its own source, a Go-free `go`), this project's C++ built from the
// recipe's checkout, a patch applied in prepare(), then ollama-pkg inspect and verify on the package.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include "pkg/generate.h"
#include "support/makepkg.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::run_process;
using test_support::TempTree;

namespace {

const fs::path source_dir = OAR_SOURCE_DIR;
const fs::path fixtures = fs::path(OAR_FIXTURES) / "pkg";

// Makes `dir` a git repository with one commit tagged `tag`; returns the commit.
std::string make_repository(const fs::path& dir, const std::string& tag) {
    const auto git = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {
            "/usr/bin/git", "-C", dir.string(), "-c", "user.name=Fixture", "-c", "user.email=fixture@example.org"};
        argv.insert(argv.end(), args.begin(), args.end());
        const auto r = run_process(argv);
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        return r.out;
    };
    git({"init", "-q"});
    git({"add", "-A"});
    git({"commit", "-q", "-m", "fixture"});
    git({"tag", tag});
    auto commit = git({"rev-parse", "HEAD"});
    commit.pop_back();
    return commit;
}

struct Fixture {
    TempTree tree;
    fs::path recipe;
    std::string upstream_commit;

    Fixture() {
        fs::copy(fixtures / "fake-ollama", tree.root() / "upstream", fs::copy_options::recursive);
        upstream_commit = make_repository(tree.root() / "upstream", "v0.32.15");
        fs::copy(fixtures / "fake-llama.cpp", tree.root() / "llama", fs::copy_options::recursive);
        const auto llama_commit = make_repository(tree.root() / "llama", "b100");

        // The recipe folder is a checkout of this project, as a user's clone would be.
        recipe = tree.root() / "recipe";
        fs::create_directory(recipe);
        for (const char* part : {"CMakeLists.txt", "LICENSE", "README.md", "docs", "src", "bench", "templates"})
            fs::copy(source_dir / part, recipe / part, fs::copy_options::recursive);
        fs::create_directory(recipe / "patches");
        tree.write("recipe/ollama-airllm-rocm.yaml",
                   "maintainer: Round Trip <test@example.org>\n"
                   "upstream:\n  repository: file://" +
                       (tree.root() / "upstream").string() + "\n  tag: v0.32.15\n  commit: " + upstream_commit +
                       "\nllama_cpp:\n  repository: file://" + (tree.root() / "llama").string() +
                       "\n  tag: b100\n  commit: " + llama_commit +
                       "\ngpu_targets: [gfx1100]\n"
                       "service:\n  models_dir: /var/lib/ollama\n");
    }

    void use_patch(const std::string& name) {
        for (const auto& entry : fs::directory_iterator(recipe / "patches")) fs::remove(entry.path());
        for (const auto& entry : fs::directory_iterator(recipe))
            if (entry.path().extension() == ".patch") fs::remove(entry.path());
        fs::copy(fixtures / name, recipe / "patches" / name);
        const auto files = pkg::generate_recipe(
            {recipe / "ollama-airllm-rocm.yaml", recipe / "templates", recipe / "patches", recipe});
        REQUIRE_MESSAGE(files.ok(), (files.ok() ? "" : files.error().message));
        REQUIRE(pkg::write_generated(*files, recipe).ok());
    }

    // `ollama-pkg build` as the build user, from copies outside the checkout (which the build user
    // may not be able to enter), with the stand-in `go` first on PATH.
    std::vector<std::string> build_command(const std::vector<std::string>& flags = {},
                                           const std::vector<std::string>& env = {}) {
        if (!fs::exists(tree.root() / "bin/go")) {
            tree.copy(fixtures / "go-standin/go", "bin/go");
            tree.copy(OAR_OLLAMA_PKG, "bin/ollama-pkg");
        }
        auto argv = test_support::as_build_user(tree.root(), (tree.root() / "bin").string());
        argv.insert(argv.end(), env.begin(), env.end());
        std::vector<std::string> build = {(tree.root() / "bin/ollama-pkg").string(), "build", "--config",
                                          (recipe / "ollama-airllm-rocm.yaml").string()};
        build.insert(build.end(), flags.begin(), flags.end());
        build.insert(build.end(), {"--", "-c", "--nocheck"});
        argv.insert(argv.end(), build.begin(), build.end());
        return argv;
    }
};

}  // namespace

TEST_CASE("roundtrip: a patch that does not apply stops the build in prepare() with the reject and the log") {
    Fixture f;
    f.use_patch("0001-does-not-apply.patch");
    const auto r = run_process(f.build_command());
    INFO((r.out + r.err));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("makepkg failed (exit 4) at: ERROR: A failure occurred in prepare().") != std::string::npos);
    CHECK(r.err.find("last lines:") != std::string::npos);
    CHECK(r.err.find("patch failed: main.c:2") != std::string::npos);
    CHECK(r.err.find("full log: " + (f.recipe / "ollama-pkg-build.log").string()) != std::string::npos);
    const auto log = test_support::read_file(f.recipe / "ollama-pkg-build.log");
    CHECK(log.find("0001-does-not-apply.patch does not apply to Ollama v0.32.15") != std::string::npos);
    CHECK(test_support::find_package_file(f.recipe).empty());
}

TEST_CASE("roundtrip: ollama-pkg build refuses root and stops makepkg cleanly on Ctrl-C") {
    Fixture f;
    f.use_patch("0001-fixture-greeting.patch");
    if (::geteuid() == 0) {
        const auto root =
            run_process({OAR_OLLAMA_PKG, "build", "--config", (f.recipe / "ollama-airllm-rocm.yaml").string()});
        CHECK(root.exit_code == 2);
        CHECK(root.err.find("refusing to run as root") != std::string::npos);
    }
    test_support::RunningProcess build(f.build_command());
    REQUIRE(build.wait_for_output("Starting build()", 300));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    build.send_signal(SIGINT);
    const auto r = build.wait();
    INFO(r.out);
    CHECK(r.exit_code == 130);
    CHECK(r.out.find("interrupted") != std::string::npos);
    CHECK(test_support::find_package_file(f.recipe).empty());
    // Nothing of the build is left running.
    const auto left = run_process({"/usr/bin/pgrep", "-f", f.recipe.string()});
    CHECK_MESSAGE(left.exit_code == 1, left.out);
}

TEST_CASE("roundtrip: ollama-pkg build --install makes a package that inspect and verify accept") {
    Fixture f;
    f.use_patch("0001-fixture-greeting.patch");
    // --install ends with `sudo pacman -U`; echo stands in for sudo, after the real inspect and verify.
    const auto r = run_process(f.build_command({"--install"}, {"SUDO=/bin/echo"}));
    INFO((r.out + r.err));
    REQUIRE(r.exit_code == 0);
    // Progress from makepkg's own steps, with the skipped checks named on this Debian machine.
    CHECK(r.out.find("skipped:") != std::string::npos);
    CHECK(r.out.find("makepkg runs with --nodeps") != std::string::npos);
    for (const char* step :
         {"] Retrieving sources...", "] Starting prepare()...", "] Starting build()...", "] Finished making:"})
        CHECK(r.out.find(step) != std::string::npos);
    CHECK(test_support::read_file(f.recipe / "ollama-pkg-build.log").find("Applied patch main.c cleanly") !=
          std::string::npos);
    const auto package = test_support::find_package_file(f.recipe);
    REQUIRE_FALSE(package.empty());
    // makepkg --clean removed its own $srcdir, not this project's src/.
    CHECK(fs::exists(f.recipe / "src/probe/main.cpp"));
    CHECK_FALSE(fs::exists(f.recipe / "makepkg-build/ollama-airllm-rocm/src"));
    CHECK(package.filename() == "ollama-airllm-rocm-0.32.15-1-x86_64.pkg.tar.zst");

    // What the package holds, read back with bsdtar and run.
    const auto extract = f.tree.root() / "extract";
    fs::create_directory(extract);
    REQUIRE(run_process({"/usr/bin/bsdtar", "-xf", package.string(), "-C", extract.string()}).exit_code == 0);
    const auto ollama = run_process({(extract / "usr/bin/ollama").string()});
    CHECK(ollama.out == "ollama version is 0.32.15 (patched by ollama-airllm-rocm)\n");
    const auto probe = run_process({(extract / "usr/bin/rocm-probe").string(), "--sysfs-root",
                                    (fs::path(OAR_FIXTURES) / "probe/rx7900xtx").string(), "--format", "targets"});
    CHECK(probe.out == "gfx1100\n");
    std::vector<std::string> backend_dir;
    for (const auto& entry : fs::directory_iterator(extract / "usr/lib/ollama/rocm_v7_2"))
        backend_dir.push_back(entry.path().filename().string());
    CHECK(backend_dir == std::vector<std::string>{"libggml-hip.so"});  // bundled ROCm copies dropped
    CHECK(test_support::read_file(extract / "usr/lib/ollama/rocm_v7_2/libggml-hip.so").find("gfx1100") !=
          std::string::npos);
    CHECK(fs::exists(extract / "usr/lib/ollama/llama-server"));
    // Where the Ollama patch finds the runner (llm.FindLlamaCppBinary looks in lib/ollama).
    CHECK(fs::read_symlink(extract / "usr/lib/ollama/ollama-airllm") == "../../bin/ollama-airllm");
    const auto runner_help = run_process({(extract / "usr/lib/ollama/ollama-airllm").string(), "runner", "--help"});
    CHECK(runner_help.exit_code == 0);
    CHECK(runner_help.out.find("usage: ollama-airllm runner") != std::string::npos);
    CHECK(test_support::read_file(extract / "etc/default/ollama") == test_support::read_file(f.recipe / "ollama.env"));
    for (const char* license : {"LICENSE", "LICENSE.ollama", "LICENSE.llama.cpp"})
        CHECK(fs::exists(extract / "usr/share/licenses/ollama-airllm-rocm" / license));
    const auto pkginfo = test_support::read_file(extract / ".PKGINFO");
    CHECK(pkginfo.find("\nbackup = etc/default/ollama\n") != std::string::npos);
    CHECK(pkginfo.find("\nprovides = ollama=0.32.15\n") != std::string::npos);

    const auto inspect = run_process({OAR_OLLAMA_PKG, "inspect", package.string()});
    CHECK_MESSAGE(inspect.exit_code == 0, (inspect.out + inspect.err));
    const auto verify = run_process({OAR_OLLAMA_PKG, "verify", package.string()});
    CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
}
