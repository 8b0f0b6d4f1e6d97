"""tools/build-ollama refuses what it must not build: a module whose h1: sum differs from the recipe's,
a patch that does not apply, and a patched tree that does not compile, each with a message naming
the problem and a non-zero exit, leaving nothing in --out."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (ROOT / "ollama-airllm-rocm.yaml").read_text()


class BuildOllama(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="oar-build-ollama-"))
        self.patches = self.tmp / "patches"
        shutil.copytree(ROOT / "patches", self.patches)
        self.config = self.tmp / "config.yaml"
        self.config.write_text(CONFIG)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def build(self):
        r = subprocess.run([str(ROOT / "tools" / "build-ollama"), "--config", str(self.config), "--patches",
                            str(self.patches), "--out", str(self.tmp / "out"), "--runner", "/bin/true"],
                           capture_output=True, text=True, timeout=900,
                           env=dict(os.environ, OAR_CACHE_DIR=str(self.tmp / "cache")))
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertFalse((self.tmp / "out").exists())
        return r.stderr

    def test_module_sum_must_match(self):
        self.config.write_text(re.sub(r"module_sum: \S+", "module_sum: h1:" + "A" * 43 + "=", CONFIG))
        err = self.build()
        self.assertIn("has sum h1:", err)
        self.assertIn("records h1:" + "A" * 43 + "=", err)
        self.config.write_text(re.sub(r"\n  module_sum: \S+", "", CONFIG))
        self.assertIn("upstream.module_sum '' is not a Go module h1: sum", self.build())

    def test_patch_that_does_not_apply(self):
        patch = self.patches / "ollama-airllm.patch"
        patch.write_text(patch.read_text().replace(" \tif len(gpus) > 0 {", " \tif len(gpus) > 1 {"))
        err = self.build()
        self.assertIn("ollama-airllm.patch does not apply to Ollama v", err)

    def test_patch_that_does_not_compile(self):
        (self.patches / "zz-broken.patch").write_text(
            "diff --git a/x/mlxrunner/broken.go b/x/mlxrunner/broken.go\nnew file mode 100644\n"
            "--- /dev/null\n+++ b/x/mlxrunner/broken.go\n@@ -0,0 +1,3 @@\n+package mlxrunner\n+\n"
            "+var broken int = \"not an int\"\n")
        err = self.build()
        self.assertIn("does not compile", err)
        self.assertIn("broken.go", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
