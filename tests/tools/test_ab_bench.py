#!/usr/bin/env python3
"""tools/ab-bench on small C projects built by the real CMake: variants alternate round by round, a packed
revision builds like a tree, a second call reuses the builds, a failed build stops before any run, a run past
its timeout is killed with what it started, and bad usage is refused with the problem named."""
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ab-bench"

CMAKE = "cmake_minimum_required(VERSION 3.20)\nproject(mini C)\nadd_executable(hello hello.c)\n"

# argv[1] "hang": writes its pid to argv[2] and sleeps, for the timeout test.
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


def write_project(folder, variant, broken=False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "CMakeLists.txt").write_text(CMAKE)
    (folder / "hello.c").write_text(f'#define VARIANT "{variant}"\n' + HELLO + ("not C\n" if broken else ""))


def git(folder, *words):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *words], cwd=folder, check=True,
                   capture_output=True)


class AbBench(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def tool(self, *words, timeout=120):
        # stdout is a pipe, as under `tee`
        return subprocess.run([sys.executable, str(TOOL), *words], cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout)

    def runs(self, out):
        return [line for line in out.splitlines() if line.startswith("variant ") or line.startswith("=== ")]

    def test_variants_alternate_and_a_packed_revision_builds_like_a_tree(self):
        write_project(self.dir / "old", "old")
        git(self.dir / "old", "init", "-q")
        git(self.dir / "old", "add", ".")
        git(self.dir / "old", "commit", "-q", "-m", "old")
        # git archive runs where the repository is: outside one --pack fails, leaving no file
        packed = self.tool("--pack", "HEAD", "old.tar.gz")
        self.assertEqual(packed.returncode, 1)
        self.assertIn("git archive of HEAD failed", packed.stderr)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["old"])
        packed = subprocess.run([sys.executable, str(TOOL), "--pack", "HEAD", str(self.dir / "deps" / "old.tar.gz")],
                                cwd=self.dir / "old", capture_output=True, text=True)
        self.assertEqual(packed.returncode, 0, packed.stderr)
        self.assertEqual(sorted(p.name for p in (self.dir / "deps").iterdir()), ["old.tar.gz"])
        write_project(self.dir / "new", "new")
        result = self.tool("--rounds", "2", "old=deps/old.tar.gz", "new=new", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        build = {name: (self.dir / "build-ab" / name / "build").resolve() for name in ("old", "new")}
        self.assertEqual(self.runs(result.stdout), [
            f"=== old, round 1 of 2: {build['old']}/hello", "variant old",
            f"=== new, round 1 of 2: {build['new']}/hello", "variant new",
            f"=== old, round 2 of 2: {build['old']}/hello", "variant old",
            f"=== new, round 2 of 2: {build['new']}/hello", "variant new",
        ])
        self.assertIn("old built in", result.stdout)

        # again: the builds are reused, and a tarball packed anew is unpacked anew
        binary = build["new"] / "hello"
        before = binary.stat().st_mtime_ns
        write_project(self.dir / "old", "older")
        git(self.dir / "old", "commit", "-q", "-am", "older")
        time.sleep(0.01)
        subprocess.run([sys.executable, str(TOOL), "--pack", "HEAD", str(self.dir / "deps" / "old.tar.gz")],
                       cwd=self.dir / "old", check=True, capture_output=True)
        result = self.tool("--rounds", "1", "old=deps/old.tar.gz", "new=new", "--", "{build}/hello")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual([line for line in self.runs(result.stdout) if not line.startswith("===")],
                         ["variant older", "variant new"])
        self.assertEqual(binary.stat().st_mtime_ns, before)

    def test_a_failed_build_stops_before_any_run_and_shows_its_log(self):
        write_project(self.dir / "good", "good")
        write_project(self.dir / "bad", "bad", broken=True)
        result = self.tool("good=good", "bad=bad", "--", "{build}/hello")
        self.assertEqual(result.returncode, 1)
        self.assertIn("bad: the build failed", result.stderr)
        self.assertIn("not C", result.stderr)  # the compiler's complaint, from the log's end
        self.assertEqual(self.runs(result.stdout), [])

    def test_a_run_past_its_timeout_is_killed_and_the_rounds_go_on(self):
        write_project(self.dir / "a", "a")
        pid_file = self.dir / "pid"
        start = time.monotonic()
        result = self.tool("--rounds", "1", "--timeout", "2", "a=a", "--", "{build}/hello", "hang", str(pid_file),
                           timeout=90)
        self.assertLess(time.monotonic() - start, 80)
        self.assertEqual(result.returncode, 1)
        self.assertIn("=== a, round 1: timed out after 2 s", result.stdout)
        pid = int(pid_file.read_text())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_bad_usage_is_refused_with_the_problem_named(self):
        write_project(self.dir / "a", "a")
        cases = [
            (["a=missing", "--", "true"], "missing: no such source tree or tarball (for variant a)"),
            (["a=a"], "no command: give it after `--`"),
            (["a=a", "--"], "no command after `--`"),
            (["--", "true"], "no variant"),
            (["a=a", "a=a", "--", "true"], "variant 'a' given twice"),
            (["--rounds", "0", "a=a", "--", "true"], "--rounds must be a positive number, not '0'"),
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

    def test_a_file_that_is_not_a_tarball_is_named(self):
        (self.dir / "junk.tar.gz").write_text("not a tarball")
        result = self.tool("a=junk.tar.gz", "--", "true")
        self.assertEqual(result.returncode, 1)
        self.assertIn("junk.tar.gz: not a tarball that --pack writes", result.stderr)


if __name__ == "__main__":
    unittest.main()
