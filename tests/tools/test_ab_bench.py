#!/usr/bin/env python3
"""tools/ab-bench on small C projects built by the real CMake: variants alternate round by round, a packed
revision builds like a tree and is rebuilt only when it changes, settings reach CMake and a change of them
starts the build afresh, a failed build stops the others before any run, a run past its timeout or
interrupted is stopped with everything it started, and bad usage is refused with the problem named."""
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ab-bench"

CMAKE = """cmake_minimum_required(VERSION 3.20)
project(mini C)
message(STATUS "ab: type=${CMAKE_BUILD_TYPE} engine=${OAR_ENGINE_ONLY} x=${X} prefix=${CMAKE_PREFIX_PATH}")
add_executable(hello hello.c)
add_executable(other hello.c)
"""

# argv[1] "hang": writes its pid to argv[2] and sleeps, for the timeout and interruption tests.
HELLO = """#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char** argv) {
    if (argc > 2 && strcmp(argv[1], "hang") == 0) {
        FILE* f = fopen(argv[2], "w");
        fprintf(f, "%d", (int)getpid());
        fclose(f);
        sleep(600);
    }
    printf("variant %s\\n", VARIANT);
    return 0;
}
"""


def write_project(folder, variant, broken=False, slow_pid=None, fail_after=None):
    folder.mkdir(parents=True, exist_ok=True)
    cmake = CMAKE
    if slow_pid:  # a build step that takes a minute
        cmake += f'add_custom_target(slow ALL COMMAND sh -c "echo $$ > {slow_pid}; sleep 60" VERBATIM)\n'
    if fail_after:  # a build step that fails once that file is written
        cmake += (f'add_custom_target(fails ALL COMMAND sh -c "while [ ! -s {fail_after} ]; do sleep 0.1; done; '
                  f'echo the step failed; exit 1" VERBATIM)\n')
    (folder / "CMakeLists.txt").write_text(cmake)
    (folder / "hello.c").write_text(f'#define VARIANT "{variant}"\n' + HELLO + ("not C\n" if broken else ""))


def git(folder, *words, env=None):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *words], cwd=folder, check=True,
                   capture_output=True, env=dict(os.environ, **(env or {})))


def gone(pid):
    """True once the process has ended (a zombie that its killed parent left counts as ended)."""
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def wait_for_file(path, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"{path} never written")


class AbBench(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def tool(self, *words, cwd=None, timeout=120):
        # stdout is a pipe, as under `tee`
        return subprocess.run([sys.executable, str(TOOL), *words], cwd=cwd or self.dir, capture_output=True,
                              text=True, timeout=timeout)

    def outputs(self, out):
        return [line for line in out.splitlines() if line.startswith("variant ")]

    def log(self, name):
        return (self.dir / "build-ab" / name / "build.log").read_text()

    def test_variants_alternate_and_a_packed_revision_builds_like_a_tree(self):
        write_project(self.dir / "repo", "old")
        (self.dir / "repo" / "sub").mkdir()
        (self.dir / "repo" / "sub" / "f").write_text("")
        git(self.dir / "repo", "init", "-q")
        git(self.dir / "repo", "add", ".")
        git(self.dir / "repo", "commit", "-q", "-m", "old")
        # outside a repository --pack fails and leaves no file
        packed = self.tool("--pack", "HEAD", "old.tar.gz")
        self.assertEqual(packed.returncode, 1)
        self.assertIn("--pack runs in a git repository", packed.stderr)
        self.assertFalse((self.dir / "old.tar.gz").exists())
        # from a subfolder it packs the whole tree
        tarball = self.dir / "deps" / "old.tar.gz"
        packed = self.tool("--pack", "HEAD", str(tarball), cwd=self.dir / "repo" / "sub")
        self.assertEqual(packed.returncode, 0, packed.stderr)
        self.assertEqual(sorted(p.name for p in tarball.parent.iterdir()), ["old.tar.gz"])
        write_project(self.dir / "new", "new")
        result = self.tool("--rounds", "2", "old=deps/old.tar.gz", "new=new", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        build = {name: (self.dir / "build-ab" / name / "build").resolve() for name in ("old", "new")}
        runs = [line for line in result.stdout.splitlines() if line.startswith(("variant ", "=== "))]
        self.assertEqual(runs, [
            f"=== old, round 1 of 2: {build['old']}/hello", "variant old",
            f"=== new, round 1 of 2: {build['new']}/hello", "variant new",
            f"=== old, round 2 of 2: {build['old']}/hello", "variant old",
            f"=== new, round 2 of 2: {build['new']}/hello", "variant new",
        ])
        self.assertIn("old built in", result.stdout)
        self.assertIn("ab: type=Release engine=ON", self.log("old"))

        # a revision packed anew is unpacked and built anew, though its files keep older times than the build
        mtime = {name: (build[name] / "hello").stat().st_mtime_ns for name in build}
        write_project(self.dir / "repo", "older")
        git(self.dir / "repo", "commit", "-q", "-am", "older", env={"GIT_COMMITTER_DATE": "2001-01-01T00:00:00"})
        self.assertEqual(self.tool("--pack", "HEAD", str(tarball), cwd=self.dir / "repo").returncode, 0)
        result = self.tool("--rounds", "1", "old=deps/old.tar.gz", "new=new", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(self.outputs(result.stdout), ["variant older", "variant new"])
        self.assertEqual((build["new"] / "hello").stat().st_mtime_ns, mtime["new"])

        # unchanged: both builds reused
        mtime = {name: (build[name] / "hello").stat().st_mtime_ns for name in build}
        result = self.tool("--rounds", "1", "old=deps/old.tar.gz", "new=new", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(self.outputs(result.stdout), ["variant older", "variant new"])
        self.assertEqual({name: (build[name] / "hello").stat().st_mtime_ns for name in build}, mtime)

    def test_settings_reach_cmake_and_a_change_of_them_starts_afresh(self):
        write_project(self.dir / "a", "a")
        write_project(self.dir / "b", "b")
        (self.dir / "prefix").mkdir()
        result = self.tool("--rounds", "1", "--targets", "hello", "--cmake-arg", "-DX=80;90", "--prefix", "prefix",
                           "v=a", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertIn(f"ab: type=Release engine=ON x=80;90 prefix={(self.dir / 'prefix').resolve()}", self.log("v"))
        build = self.dir / "build-ab" / "v" / "build"
        self.assertTrue((build / "hello").is_file())
        self.assertFalse((build / "other").exists())  # only the targets asked for
        # without the argument it is gone from the cache too; another source for the same name builds it
        result = self.tool("--rounds", "1", "v=b", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertIn("ab: type=Release engine=ON x= prefix=", self.log("v"))
        self.assertEqual(self.outputs(result.stdout), ["variant b"])
        self.assertTrue((build / "other").is_file())

    def test_a_failed_build_stops_the_others_before_any_run_and_shows_its_log(self):
        slow_pid = self.dir / "slow.pid"
        write_project(self.dir / "slow", "slow", slow_pid=slow_pid)
        write_project(self.dir / "bad", "bad", fail_after=slow_pid)
        start = time.monotonic()
        result = self.tool("slow=slow", "bad=bad", "--", "{build}/hello")
        self.assertLess(time.monotonic() - start, 50)
        self.assertEqual(result.returncode, 1)
        self.assertIn("bad: the build failed", result.stderr)
        self.assertIn("the step failed", result.stderr)  # from the log's end
        self.assertNotIn("===", result.stdout)
        self.assertTrue(gone(int(slow_pid.read_text())))

    def test_a_program_that_does_not_compile_is_shown(self):
        write_project(self.dir / "bad", "bad", broken=True)
        result = self.tool("bad=bad", "--", "{build}/hello")
        self.assertEqual(result.returncode, 1)
        self.assertIn("bad: the build failed", result.stderr)
        self.assertIn("not C", result.stderr)  # the compiler's complaint

    def test_a_run_past_its_timeout_is_stopped_with_what_it_started(self):
        write_project(self.dir / "a", "a")
        pid_file = self.dir / "pid"
        start = time.monotonic()
        # the hanging program is the shell's child, not the tool's
        result = self.tool("--rounds", "2", "--timeout", "2", "a=a", "--", "sh", "-c",
                           '"$0" hang "$1"; echo after', "{build}/hello", str(pid_file), timeout=90)
        self.assertLess(time.monotonic() - start, 80)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout.count("timed out after 2 s"), 2)  # the rounds go on
        self.assertTrue(gone(int(pid_file.read_text())))

    def test_an_interrupted_tool_stops_its_run(self):
        write_project(self.dir / "a", "a")
        pid_file = self.dir / "pid"
        with open(self.dir / "out", "w") as out:
            tool = subprocess.Popen([sys.executable, str(TOOL), "a=a", "--", "sh", "-c", '"$0" hang "$1"',
                                     "{build}/hello", str(pid_file)], cwd=self.dir, stdout=out, stderr=out)
            try:
                pid = wait_for_file(pid_file)
                tool.send_signal(signal.SIGTERM)
                self.assertEqual(tool.wait(timeout=30), 128 + signal.SIGTERM)
            finally:
                tool.kill()
                tool.wait()
        self.assertTrue(gone(pid))

    def test_bad_usage_is_refused_with_the_problem_named(self):
        write_project(self.dir / "a", "a")
        cases = [
            (["a=missing", "--", "true"], "missing: no such source tree or tarball (for variant a)"),
            (["a=a"], "no command: give it after `--`"),
            (["a=a", "--"], "no command after `--`"),
            (["--", "true"], "no variant"),
            (["a=a", "a=a", "--", "true"], "variant 'a' given twice"),
            (["--rounds", "0", "a=a", "--", "true"], "--rounds must be a positive number, not '0'"),
            (["--timeout", "x", "a=a", "--", "true"], "--timeout must be a positive number, not 'x'"),
            (["--round", "3", "a=a", "--", "true"], "unknown option '--round'"),
            (["--prefix", "nowhere", "a=a", "--", "true"], "--prefix nowhere: no such folder"),
            (["plain", "--", "true"], "'plain' is not NAME=SOURCE"),
            ([".=a", "--", "true"], "variant name '.'"),
            (["a=.", "--", "true"], ".: not a source tree (no CMakeLists.txt)"),
        ]
        for words, message in cases:
            with self.subTest(words=words):
                result = self.tool(*words)
                self.assertEqual(result.returncode, 2)
                self.assertIn(message, result.stderr)
        self.assertFalse((self.dir / "build-ab").exists())

    def test_a_tarball_of_one_folder_builds_and_one_that_is_not_is_named(self):
        write_project(self.dir / "proj", "in a folder")
        with tarfile.open(self.dir / "folder.tar.gz", "w:gz") as tar:
            tar.add(self.dir / "proj", arcname="proj")
        result = self.tool("--rounds", "1", "a=folder.tar.gz", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(self.outputs(result.stdout), ["variant in a folder"])
        (self.dir / "junk.tar.gz").write_text("not a tarball")
        result = self.tool("a=junk.tar.gz", "--", "true")
        self.assertEqual(result.returncode, 1)
        self.assertIn("junk.tar.gz: not a tarball that --pack writes", result.stderr)


if __name__ == "__main__":
    unittest.main()
