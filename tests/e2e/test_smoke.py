"""One end-to-end smoke test for the PKGBUILD's check(): the Ollama just built starts the ollama-airllm
just built for a safetensors model, and the answer is the runner's own greedy text. CPU only; needs
nothing beyond the two binaries (OAR_OLLAMA_DIST/bin/ollama, OAR_OLLAMA_DIST/lib/ollama/ollama-airllm)
and Python's standard library."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import Ollama, airllm_generate, model_folder  # noqa: E402


class Smoke(unittest.TestCase):
    def test_ollama_runs_a_safetensors_model_in_ollama_airllm(self):
        with Ollama() as o:
            folder = model_folder(o.tmp / "tiny", "llama-mha-tied-f16")
            o.create("tiny", folder)
            got = o.post_json("/api/generate", {"model": "tiny", "prompt": "ROCm runs on", "raw": True,
                                                "stream": False, "options": {"temperature": 0, "num_predict": 8}})
            self.assertIn("using ollama-airllm for a safetensors model", o.log_path.read_text())
            self.assertEqual(got["response"], airllm_generate(folder, "ROCm runs on", 8)["text"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
