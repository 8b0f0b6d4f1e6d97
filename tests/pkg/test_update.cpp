// ollama-pkg update against fixture upstream repositories served over file:// with real git.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>

#include "pkg/config_edit.h"
#include "pkg/generate.h"
#include "pkg/upstream_tags.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::run_process;
using test_support::TempTree;

namespace {

const fs::path source_dir = OAR_SOURCE_DIR;
const fs::path fixtures = fs::path(OAR_FIXTURES) / "pkg";
const std::string go_main = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"ollama\") }\n";

std::string git(const fs::path& dir, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/git",
                                     "-C",
                                     dir.string(),
                                     "-c",
                                     "user.name=Fixture",
                                     "-c",
                                     "user.email=fixture@example.org",
                                     "-c",
                                     "init.defaultBranch=main"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_process(argv);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// Commits the folder's current state and tags it; returns the commit.
std::string commit_and_tag(const fs::path& dir, const std::string& tag, bool annotated = false) {
    git(dir, {"add", "-A"});
    git(dir, {"commit", "-q", "--allow-empty", "-m", tag});
    if (annotated)
        git(dir, {"tag", "-a", "-m", "release " + tag, tag});
    else
        git(dir, {"tag", tag});
    return git(dir, {"rev-parse", "HEAD"});
}

std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file()) files[entry.path().filename().string()] = test_support::read_file(entry.path());
    return files;
}

// An upstream with v0.32.15 (llama b100), v0.33.0-rc1 (b200) and, unless `stop_at_rc`, v0.33.0 (b300,
// annotated). `break_patch` changes main.c in v0.33.0 so that the fixture patch no longer applies.
struct Upstream {
    TempTree tree;
    std::map<std::string, std::string> commits;
    fs::path recipe;

    // `go_module`: v0.33.0 is a Go module (example.com/fakeollama) without the C stand-ins, and the
    // recipe's patch changes its main.go, so that update compiles the patched tree.
    explicit Upstream(bool stop_at_rc = false, bool break_patch = false, bool go_module = false) {
        const auto up = tree.root() / "upstream";
        const auto llama = tree.root() / "llama";
        fs::copy(fixtures / "fake-ollama", up, fs::copy_options::recursive);
        fs::create_directory(llama);
        git(up, {"init", "-q"});
        git(llama, {"init", "-q"});
        const auto release = [&](const std::string& tag, const std::string& llama_tag, bool annotated) {
            tree.write("upstream/LLAMA_CPP_VERSION", llama_tag + "\n");
            tree.write("llama/server.c", "/* " + llama_tag + " */\nint main(void) { return 0; }\n");
            commits[llama_tag] = commit_and_tag(llama, llama_tag);
            commits[tag] = commit_and_tag(up, tag, annotated);
        };
        release("v0.32.15", "b100", false);
        release("v0.33.0-rc1", "b200", false);
        if (!stop_at_rc) {
            if (break_patch) tree.write("upstream/main.c", "int main(void) { return 42; }\n");
            if (go_module) {
                fs::remove(up / "main.c");
                fs::remove(up / "ggml-hip.c");
                tree.write("upstream/go.mod", "module example.com/fakeollama\n\ngo 1.21\n");
                tree.write("upstream/main.go", go_main);
            }
            release("v0.33.0", "b300", true);
        }

        recipe = tree.root() / "recipe";
        fs::create_directories(recipe);
        fs::copy(source_dir / "templates", recipe / "templates", fs::copy_options::recursive);
        fs::create_directories(recipe / "patches");
        if (go_module)
            tree.write("recipe/patches/0001-go-greeting.patch",
                       "diff --git a/main.go b/main.go\n--- a/main.go\n+++ b/main.go\n@@ -3,3 +3,3 @@\n "
                       "import \"fmt\"\n \n-func main() { fmt.Println(\"ollama\") }\n+func main() { "
                       "fmt.Println(\"ollama, patched\") }\n");
        else
            fs::copy(fixtures / "0001-fixture-greeting.patch", recipe / "patches/0001-fixture-greeting.patch");
        tree.write("recipe/ollama-airllm-rocm.yaml",
                   "# kept: a comment at the top\npkgrel: 4\nupstream:\n  repository: file://" + up.string() +
                       "\n  tag: v0.32.15  # kept: a comment after a value\n  commit: " + commits["v0.32.15"] +
                       "\nllama_cpp:\n  repository: file://" + llama.string() +
                       "\n  tag: b100\ngpu_targets: [gfx1100]\n");
        const auto files = pkg::generate_recipe(
            {recipe / "ollama-airllm-rocm.yaml", recipe / "templates", recipe / "patches", recipe});
        REQUIRE_MESSAGE(files.ok(), (files.ok() ? "" : files.error().message));
        REQUIRE(pkg::write_generated(*files, recipe).ok());
    }

    test_support::ProcessResult update(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {OAR_OLLAMA_PKG, "update", "--config",
                                         (recipe / "ollama-airllm-rocm.yaml").string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_process(argv);
    }
};

}  // namespace

TEST_CASE("update moves to the newest release with its commit and llama.cpp tag, then says up to date") {
    Upstream up;
    const auto r = up.update();
    INFO((r.out + r.err));
    REQUIRE(r.exit_code == 2);
    const auto config = test_support::read_file(up.recipe / "ollama-airllm-rocm.yaml");
    CHECK(config.find("# kept: a comment at the top\n") != std::string::npos);
    CHECK(config.find("  tag: v0.33.0  # kept: a comment after a value\n") != std::string::npos);
    CHECK(config.find("  commit: " + up.commits["v0.33.0"] + "\n") != std::string::npos);  // peeled annotated tag
    CHECK(config.find("  tag: b300\n  commit: " + up.commits["b300"] + "\n") != std::string::npos);
    CHECK(config.find("pkgrel: 1\n") != std::string::npos);
    const auto pkgbuild = test_support::read_file(up.recipe / "PKGBUILD");
    CHECK(pkgbuild.find("pkgver=0.33.0\npkgrel=1\n") != std::string::npos);
    CHECK(pkgbuild.find("#commit=" + up.commits["v0.33.0"]) != std::string::npos);
    CHECK(pkgbuild.find("_llama_cpp_tag=b300") != std::string::npos);
    CHECK(r.out.find("0001-fixture-greeting.patch applies to v0.33.0") != std::string::npos);
    const auto check = run_process(
        {OAR_OLLAMA_PKG, "generate", "--check", "--config", (up.recipe / "ollama-airllm-rocm.yaml").string()});
    CHECK_MESSAGE(check.exit_code == 0, check.out);

    const auto again = up.update();
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("up to date: v0.33.0") != std::string::npos);
}

TEST_CASE("update --dry-run reports the new release and writes nothing") {
    Upstream up;
    const auto before = snapshot(up.recipe);
    const auto r = up.update({"--dry-run"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("new release: v0.32.15 -> v0.33.0") != std::string::npos);
    CHECK(r.out.find("dry run: would write") != std::string::npos);
    CHECK(snapshot(up.recipe) == before);
}

TEST_CASE("release candidates are skipped unless --rc") {
    Upstream up(/*stop_at_rc=*/true);
    const auto stable = up.update();
    CHECK(stable.exit_code == 0);
    const auto rc = up.update({"--rc"});
    INFO((rc.out + rc.err));
    CHECK(rc.exit_code == 2);
    CHECK(test_support::read_file(up.recipe / "PKGBUILD").find("pkgver=0.33.0rc1\n") != std::string::npos);
}

TEST_CASE("a patch that no longer applies fails the update with file and hunk, writing nothing") {
    Upstream up(/*stop_at_rc=*/false, /*break_patch=*/true);
    const auto before = snapshot(up.recipe);
    const auto r = up.update();
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("0001-fixture-greeting.patch does not apply to v0.33.0 (hunk at main.c:2)") != std::string::npos);
    CHECK(snapshot(up.recipe) == before);
}

TEST_CASE("update compiles a patched Go tree with the Go on PATH, and one that does not compile fails it") {
    REQUIRE_MESSAGE(run_process({"/bin/sh", "-c", "command -v go"}).exit_code == 0, "go is needed on PATH");
    Upstream up(/*stop_at_rc=*/false, /*break_patch=*/false, /*go_module=*/true);
    const auto offline = std::vector<std::string>{"GOPROXY=off", "GOFLAGS=-mod=mod"};
    {
        const auto before = snapshot(up.recipe);
        up.tree.write("recipe/patches/0002-go-type-error.patch",
                      "diff --git a/broken.go b/broken.go\nnew file mode 100644\n--- /dev/null\n+++ b/broken.go\n"
                      "@@ -0,0 +1,3 @@\n+package main\n+\n+var broken int = \"not an int\"\n");
        const auto r = run_process(
            {OAR_OLLAMA_PKG, "update", "--config", (up.recipe / "ollama-airllm-rocm.yaml").string()}, offline);
        INFO((r.out + r.err));
        CHECK(r.exit_code == 3);
        CHECK(r.err.find("the patched v0.33.0 does not compile (go build):") != std::string::npos);
        CHECK(r.err.find("broken.go:3") != std::string::npos);
        fs::remove(up.recipe / "patches/0002-go-type-error.patch");
        CHECK(snapshot(up.recipe) == before);
    }
    const auto r =
        run_process({OAR_OLLAMA_PKG, "update", "--config", (up.recipe / "ollama-airllm-rocm.yaml").string()}, offline);
    INFO((r.out + r.err));
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("the patched v0.33.0 compiles (go build)") != std::string::npos);
}

TEST_CASE("update records the new tag's Go module sum from the module proxy, which must agree on the commit") {
    REQUIRE_MESSAGE(run_process({"/bin/sh", "-c", "command -v go"}).exit_code == 0, "go is needed on PATH");
    Upstream up(/*stop_at_rc=*/false, /*break_patch=*/false, /*go_module=*/true);
    auto config = test_support::read_file(up.recipe / "ollama-airllm-rocm.yaml");
    config.replace(config.find("\nllama_cpp:"), 0, "\n  module_sum: h1:" + std::string(43, 'A') + "=");
    up.tree.write("recipe/ollama-airllm-rocm.yaml", config);
    // A module proxy on disk (GOPROXY=file://) serving v0.33.0 as the Go command fetches it.
    const auto staging = up.tree.root() / "zip";
    const std::string versioned = "example.com/fakeollama@v0.33.0";
    for (const char* file : {"go.mod", "main.go"})
        up.tree.write("zip/" + versioned + "/" + file, test_support::read_file(up.tree.root() / "upstream" / file));
    const auto at = up.tree.root() / "proxy/example.com/fakeollama/@v";
    fs::create_directories(at);
    REQUIRE(run_process({"/usr/bin/bsdtar", "--format", "zip", "-cf", (at / "v0.33.0.zip").string(), "-C",
                         staging.string(), "-n", versioned + "/go.mod", versioned + "/main.go"})
                .exit_code == 0);
    fs::copy_file(up.tree.root() / "upstream/go.mod", at / "v0.33.0.mod");
    const auto serve = [&](const std::string& origin) {
        up.tree.write("proxy/example.com/fakeollama/@v/list", "v0.33.0\n");
        up.tree.write("proxy/example.com/fakeollama/@v/v0.33.0.info",
                      R"({"Version":"v0.33.0","Time":"2026-12-01T00:00:00Z","Origin":{"VCS":"git","Hash":")" + origin +
                          R"(","Ref":"refs/tags/v0.33.0"}})");
    };
    // A module cache of each run's own: go keeps what it downloaded.
    std::vector<std::string> env = {"GOPROXY=file://" + (up.tree.root() / "proxy").string(), "GOSUMDB=off",
                                    "GOFLAGS=-mod=mod", ""};
    const auto update = [&](const std::string& cache) {
        env.back() = "GOMODCACHE=" + (up.tree.root() / cache).string();
        return run_process({OAR_OLLAMA_PKG, "update", "--config", (up.recipe / "ollama-airllm-rocm.yaml").string()},
                           env);
    };

    serve(std::string(40, 'f'));
    const auto moved = update("cache-moved");
    INFO((moved.out + moved.err));
    CHECK(moved.exit_code == 3);
    CHECK(moved.err.find("the Go module proxy has example.com/fakeollama@v0.33.0 at commit ffff") != std::string::npos);

    serve(up.commits["v0.33.0"]);
    const auto r = update("cache");
    INFO((r.out + r.err));
    REQUIRE(r.exit_code == 2);
    const auto sum = run_process({"/bin/sh", "-c", "cd / && go mod download -json " + versioned}, env);
    const auto line = sum.out.find("\"Sum\": \"h1:");
    REQUIRE(line != std::string::npos);
    const auto value = sum.out.substr(line + 8, sum.out.find('"', line + 8) - line - 8);
    CHECK(value.size() == 47);
    CHECK(test_support::read_file(up.recipe / "ollama-airllm-rocm.yaml").find("  module_sum: " + value + "\n") !=
          std::string::npos);
}

TEST_CASE("an unreachable upstream is a failure that names it") {
    Upstream up;
    auto config = test_support::read_file(up.recipe / "ollama-airllm-rocm.yaml");
    const auto at = config.find("file://");
    config.replace(at, config.find('\n', at) - at, "file:///nonexistent/ollama.git");
    up.tree.write("recipe/ollama-airllm-rocm.yaml", config);
    const auto r = up.update();
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("file:///nonexistent/ollama.git") != std::string::npos);
    CHECK(r.err.find("check the repository URL") != std::string::npos);
}

TEST_CASE("ls-remote output: peeled annotated tags, garbage rejected") {
    const std::string a(40, 'a'), b(40, 'b'), c(40, 'c');
    const auto tags =
        pkg::parse_ls_remote(a + "\trefs/tags/v0.9.0\n" + b + "\trefs/tags/v0.10.0\n" + c + "\trefs/tags/v0.10.0^{}\n");
    REQUIRE(tags.ok());
    REQUIRE(tags->size() == 2);
    CHECK(tags->at(1).name == "v0.10.0");
    CHECK(tags->at(1).commit == c);
    CHECK_FALSE(pkg::parse_ls_remote("not a line\n").ok());
}

TEST_CASE("the newest release follows pacman's version order") {
    const std::string h(40, '0');
    const std::vector<pkg::RemoteTag> tags = {{"v0.9.0", h},      {"v0.10.0", h}, {"v0.10.1-rc2", h}, {"b4000", h},
                                              {"v0.10.0-rc9", h}, {"v1.0", h},    {"latest", h}};
    CHECK(pkg::newest_release(tags, false)->name == "v0.10.0");
    CHECK(pkg::newest_release(tags, true)->name == "v0.10.1-rc2");
    CHECK_FALSE(pkg::newest_release({{"nightly", h}}, true).has_value());
}

TEST_CASE("config edits keep comments, add a missing key and refuse what they cannot place") {
    const std::string text = "# top\nupstream:\n  tag: v1.0.0 # why\n  commit: x\nllama_cpp:\n  tag: b1\n";
    const auto edited =
        pkg::edit_config_text(text, "c.yaml", {{{"upstream", "tag"}, "v2.0.0"}, {{"llama_cpp", "commit"}, "y"}});
    REQUIRE(edited.ok());
    CHECK(*edited == "# top\nupstream:\n  tag: v2.0.0 # why\n  commit: x\nllama_cpp:\n  tag: b1\n  commit: y\n");
    const auto flow = pkg::edit_config_text("llama_cpp: {tag: b1}\n", "c.yaml", {{{"llama_cpp", "commit"}, "y"}});
    REQUIRE_FALSE(flow.ok());
    CHECK(flow.error().message.find("add it by hand") != std::string::npos);
    const auto no_parent = pkg::edit_config_text("pkgrel: 1\n", "c.yaml", {{{"upstream", "tag"}, "v2"}});
    REQUIRE_FALSE(no_parent.ok());
    CHECK(no_parent.error().message.find("no mapping 'upstream'") != std::string::npos);
}

namespace {

// A package whose .BUILDINFO lists what it was built against, packed with the real bsdtar.
fs::path package_built_against(const TempTree& tree, const std::vector<std::string>& installed) {
    std::string buildinfo = "format = 2\npkgname = ollama-airllm-rocm\npkgver = 0.32.15-1\n";
    for (const auto& i : installed) buildinfo += "installed = " + i + "\n";
    tree.write("pkgsrc/.BUILDINFO", buildinfo);
    tree.write("pkgsrc/.PKGINFO", "pkgname = ollama-airllm-rocm\npkgver = 0.32.15-1\narch = x86_64\n");
    tree.write("pkgsrc/usr/bin/ollama", "#!/bin/sh\n");
    const auto file = tree.root() / "ollama-airllm-rocm-0.32.15-1-x86_64.pkg.tar.zst";
    const auto r = run_process({"/usr/bin/bsdtar", "--zstd", "-cf", file.string(), "-C",
                                (tree.root() / "pkgsrc").string(), ".BUILDINFO", ".PKGINFO", "usr"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return file;
}

// A pacman local database as libalpm reads it: one desc file per installed package.
void installed_packages(const TempTree& tree, const std::vector<std::pair<std::string, std::string>>& packages) {
    tree.write("root/var/lib/pacman/local/ALPM_DB_VERSION", "9\n");
    for (const auto& [name, version] : packages)
        tree.write("root/var/lib/pacman/local/" + name + "-" + version + "/desc",
                   "%NAME%\n" + name + "\n\n%VERSION%\n" + version + "\n\n%ARCH%\nx86_64\n\n");
}

test_support::ProcessResult update_rocm(const TempTree& tree, const fs::path& recipe, const fs::path& package,
                                        bool dry_run = false) {
    std::vector<std::string> argv = {OAR_OLLAMA_PKG,
                                     "update",
                                     "--rocm",
                                     "--config",
                                     (recipe / "ollama-airllm-rocm.yaml").string(),
                                     "--package",
                                     package.string(),
                                     "--root",
                                     (tree.root() / "root").string(),
                                     "--dbpath",
                                     (tree.root() / "root/var/lib/pacman").string()};
    if (dry_run) argv.push_back("--dry-run");
    return run_process(argv);
}

}  // namespace

TEST_CASE("update --rocm bumps pkgrel when the installed ROCm differs from what the package was built against") {
    Upstream up;
    const auto package = package_built_against(up.tree, {"hipblas-7.2.0-1-x86_64", "rocblas-7.2.0-1-x86_64",
                                                         "go-2:1.26.0-1-x86_64", "rocm-core-7.2.0-1-x86_64"});
    installed_packages(
        up.tree, {{"hipblas", "7.2.0-1"}, {"rocblas", "7.2.1-1"}, {"go", "2:1.26.1-1"}, {"rocm-core", "7.2.0-1"}});
    const auto before = snapshot(up.recipe);
    const auto dry = update_rocm(up.tree, up.recipe, package, true);
    CHECK(dry.exit_code == 2);
    CHECK(snapshot(up.recipe) == before);

    const auto r = update_rocm(up.tree, up.recipe, package);
    INFO((r.out + r.err));
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("rocblas 7.2.0-1 -> 7.2.1-1") != std::string::npos);
    // go changed too but is not a ROCm package; match its version, not "go", which a temp path may contain
    CHECK(r.out.find("1.26") == std::string::npos);
    CHECK(r.out.find("pkgrel 4 -> 5") != std::string::npos);
    CHECK(test_support::read_file(up.recipe / "ollama-airllm-rocm.yaml").find("pkgrel: 5\n") != std::string::npos);
    CHECK(test_support::read_file(up.recipe / "PKGBUILD").find("pkgrel=5\n") != std::string::npos);
}

TEST_CASE("update --rocm: unchanged ROCm is up to date, an unknown build environment is a failure") {
    Upstream up;
    installed_packages(up.tree, {{"hipblas", "7.2.0-1"}, {"rocblas", "7.2.0-1"}});
    const auto same = update_rocm(up.tree, up.recipe,
                                  package_built_against(up.tree, {"hipblas-7.2.0-1-x86_64", "rocblas-7.2.0-1-x86_64"}));
    CHECK(same.exit_code == 0);
    CHECK(same.out.find("ROCm unchanged") != std::string::npos);
    const auto nodeps = update_rocm(up.tree, up.recipe, package_built_against(up.tree, {}));
    CHECK(nodeps.exit_code == 3);
    CHECK(nodeps.err.find("lists no ROCm packages (built with --nodeps?)") != std::string::npos);
}
