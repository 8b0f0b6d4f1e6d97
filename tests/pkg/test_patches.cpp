// tools/check-patches: our patches to Ollama are well-formed, touch exactly what the README lists,
// and (given an upstream repository) apply and leave gofmt-clean Go. The upstream here is a small
// git repository made by the test: CI has no copy of Ollama.
#include <doctest/doctest.h>

#include <filesystem>

#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::run_process;
using test_support::TempTree;

namespace {

const std::string check_patches = std::string(OAR_SOURCE_DIR) + "/tools/check-patches";

const std::string readme = R"(# project

### What the patch changes

| file | change |
|---|---|
| `x/runner/client.go` | a new line |

## Next section
| `not/a/patched/file.go` | outside the table's section |
)";

// Adds `line` and a blank line before `func Load` in x/runner/client.go.
std::string patch_adding(const std::string& line) {
    return "A patch for the test.\n\n"
           "diff --git a/x/runner/client.go b/x/runner/client.go\n"
           "--- a/x/runner/client.go\n"
           "+++ b/x/runner/client.go\n"
           "@@ -1,3 +1,5 @@\n"
           " package runner\n"
           " \n"
           "+" +
           line +
           "\n"
           "+\n"
           " func Load() {}\n";
}

struct Fixture {
    TempTree tree;
    Fixture() {
        tree.write("README.md", readme);
        tree.write("upstream/x/runner/client.go", "package runner\n\nfunc Load() {}\n");
        const auto git = [&](std::vector<std::string> args) {
            args.insert(args.begin(), {"/usr/bin/git", "-C", (tree.root() / "upstream").string(), "-c",
                                       "user.name=Fixture", "-c", "user.email=fixture@example.org"});
            REQUIRE(run_process(args).exit_code == 0);
        };
        git({"init", "-q"});
        git({"add", "-A"});
        git({"commit", "-qm", "v1"});
        git({"tag", "v1"});
    }
    test_support::ProcessResult check(const std::string& patch, bool with_upstream = false) const {
        tree.write("patches/0001-test.patch", patch);
        std::vector<std::string> argv = {check_patches, "--readme", (tree.root() / "README.md").string(), "--patches",
                                         (tree.root() / "patches").string()};
        if (with_upstream) argv.insert(argv.end(), {"--upstream", (tree.root() / "upstream").string(), "--ref", "v1"});
        return run_process(argv);
    }
};

}  // namespace

TEST_CASE("check-patches: this repository's patches touch exactly the files its README lists") {
    const auto r = run_process({check_patches});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("well-formed, touching the 9 file(s) the README lists") != std::string::npos);
}

TEST_CASE("check-patches: a listed file, a clean apply and gofmt-clean Go pass") {
    Fixture f;
    const auto r = f.check(patch_adding("const airllm = true"), true);
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("they apply to v1") != std::string::npos);
    CHECK(r.out.find("1 gofmt-clean Go file(s)") != std::string::npos);
}

TEST_CASE("check-patches: a file the README does not list is named") {
    Fixture f;
    std::string patch = patch_adding("const airllm = true");
    for (const char* from : {"a/x/runner/client.go", "b/x/runner/client.go"}) {
        const std::string to = std::string(from).substr(0, 2) + "x/runner/server.go";
        for (auto at = patch.find(from); at != std::string::npos; at = patch.find(from))
            patch.replace(at, std::string(from).size(), to);
    }
    const auto r = f.check(patch);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("listed in the README, not patched: x/runner/client.go") != std::string::npos);
    CHECK(r.err.find("patched, not listed in the README: x/runner/server.go") != std::string::npos);
}

TEST_CASE("check-patches: a malformed patch, one that does not apply, and unformatted Go fail") {
    Fixture f;
    const auto garbled = f.check("diff --git a/x b/x\n@@ nonsense\n");
    CHECK(garbled.exit_code == 1);
    CHECK(garbled.err.find("0001-test.patch is not a well-formed patch") != std::string::npos);

    std::string stale = patch_adding("const airllm = true");
    stale.replace(stale.find(" func Load() {}"), 15, " func Load(ctx int) {}");
    const auto rejected = f.check(stale, true);
    CHECK(rejected.exit_code == 1);
    CHECK(rejected.err.find("0001-test.patch does not apply to v1") != std::string::npos);

    const auto unformatted = f.check(patch_adding("const   airllm=true"), true);
    CHECK(unformatted.exit_code == 1);
    CHECK(unformatted.err.find("not gofmt-clean after patching: x/runner/client.go") != std::string::npos);
}
