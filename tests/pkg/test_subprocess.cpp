// common::run_subprocess with real programs: capture, exit codes, cwd, environment, timeouts, errors.
#include <doctest/doctest.h>

#include <chrono>

#include "common/subprocess.h"
#include "support/temp_tree.h"

using common::run_subprocess;
using common::SubprocessOptions;

TEST_CASE("subprocess: captures stdout, stderr and the exit code") {
    const auto r = run_subprocess({"/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3"});
    REQUIRE(r.ok());
    CHECK(r->exit_code == 3);
    CHECK_FALSE(r->timed_out);
    CHECK_FALSE(r->ok());
    CHECK(r->out == "to-out\n");
    CHECK(r->err == "to-err\n");
}

TEST_CASE("subprocess: a bare name is found in PATH and arguments pass unquoted") {
    const auto r = run_subprocess({"printf", "%s|", "two words", "$HOME", "*"});
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
    CHECK(r->out == "two words|$HOME|*|");
}

TEST_CASE("subprocess: output larger than a pipe buffer on both streams does not deadlock") {
    const auto r = run_subprocess({"/bin/sh", "-c", "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2"});
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
    CHECK(r->out.size() == 300000);
    CHECK(r->err.size() == 200000);
}

TEST_CASE("subprocess: runs in the given folder with extra environment entries overriding") {
    test_support::TempTree tree;
    SubprocessOptions options;
    options.cwd = tree.root();
    options.extra_env = {"OAR_SUBPROCESS_TEST=hello", "HOME=/nonexistent/home"};
    const auto r = run_subprocess({"/bin/sh", "-c", "pwd; echo $OAR_SUBPROCESS_TEST; echo $HOME"}, options);
    REQUIRE(r.ok());
    CHECK(r->out == std::filesystem::canonical(tree.root()).string() + "\nhello\n/nonexistent/home\n");
}

TEST_CASE("subprocess: stdin is /dev/null so a program waiting for input ends") {
    SubprocessOptions options;
    options.timeout = std::chrono::seconds(10);
    const auto r = run_subprocess({"cat"}, options);
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
    CHECK_FALSE(r->timed_out);
    CHECK(r->out.empty());
}

TEST_CASE("subprocess: a timeout kills the child and its children") {
    SubprocessOptions options;
    options.timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    // The grandchild sleep holds the pipes open: killing only the shell would leave us waiting.
    const auto r = run_subprocess({"/bin/sh", "-c", "sleep 30 & sleep 30; echo never"}, options);
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(r.ok());
    CHECK(r->timed_out);
    CHECK_FALSE(r->ok());
    CHECK(r->exit_code == 128 + 9);
    CHECK(r->out.empty());
    CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("subprocess: a missing program is an error naming it, not a child exit code") {
    const auto by_name = run_subprocess({"oar-no-such-program-xyz", "--version"});
    REQUIRE_FALSE(by_name.ok());
    CHECK(by_name.error().message.find("oar-no-such-program-xyz: program not found in PATH") != std::string::npos);

    const auto by_path = run_subprocess({"/nonexistent/bin/pacman", "-V"});
    REQUIRE_FALSE(by_path.ok());
    CHECK(by_path.error().message == "/nonexistent/bin/pacman: no such program (not an executable file)");

    test_support::TempTree tree;
    tree.write("not-executable", "#!/bin/sh\n");
    const auto not_exec = run_subprocess({(tree.root() / "not-executable").string()});
    REQUIRE_FALSE(not_exec.ok());
    CHECK(not_exec.error().message.find("not an executable file") != std::string::npos);

    CHECK_FALSE(run_subprocess({}).ok());
}

TEST_CASE("subprocess: a folder that cannot be entered is an error naming it") {
    SubprocessOptions options;
    options.cwd = "/nonexistent/folder";
    const auto r = run_subprocess({"/bin/true"}, options);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("cannot enter /nonexistent/folder") != std::string::npos);
    CHECK(r.error().message.find("No such file or directory") != std::string::npos);
}

TEST_CASE("subprocess: an exec failure (bad interpreter) is reported with the reason") {
    test_support::TempTree tree;
    tree.write("bad-interpreter", "#!/nonexistent/interpreter\n");
    std::filesystem::permissions(tree.root() / "bad-interpreter", std::filesystem::perms::owner_all);
    const auto r = run_subprocess({(tree.root() / "bad-interpreter").string()});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("cannot run ") != std::string::npos);
    CHECK(r.error().message.find("No such file or directory") != std::string::npos);
}

TEST_CASE("subprocess: find_program searches the given list in order") {
    const auto sh = common::find_program("sh", "/nonexistent:/bin:/usr/bin");
    REQUIRE(sh.ok());
    CHECK(*sh == "/bin/sh");
    const auto none = common::find_program("sh", "/nonexistent");
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().message == "sh: program not found in PATH (/nonexistent)");
    CHECK_FALSE(common::find_program("", "/bin").ok());
}

TEST_CASE("subprocess: describe_command quotes what a shell would split") {
    CHECK(common::describe_command({"pacman", "-U", "/tmp/a b.pkg", "it's"}) == "pacman -U '/tmp/a b.pkg' 'it'\\''s'");
    CHECK(common::describe_command({"x", ""}) == "x ''");
}
