"""What a user sees when something is wrong (a corrupt blob, a bad runner setting, a missing runner),
how two models share the machine, and which runner a safetensors or a GGUF model goes to: through the
patched Ollama, its API and `ollama run`."""

import json
import os
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import ROOT, Ollama, airllm_generate, alive, model_folder, pull_gguf  # noqa: E402

MODELFILE = "PARAMETER temperature 0\nPARAMETER num_predict 8\n"


def generate(o, model):
    return o.request("POST", "/api/generate", {"model": model, "prompt": "hi", "raw": True, "stream": False})


class Failures(unittest.TestCase):
    def check_reaches_user(self, o, model, *fragments):
        """The API's error and `ollama run`'s both carry the runner's whole message."""
        status, body = generate(o, model)
        self.assertEqual(status, 500, body)
        message = json.loads(body)["error"]
        run = o.cli("run", model, "hi", check=False)
        self.assertNotEqual(run.returncode, 0)
        for fragment in fragments:
            self.assertIn(fragment, message)
            self.assertIn(fragment, run.stderr)
        # One readable line, not the runner's JSON error body or a bare "error:".
        self.assertNotIn("\n", message)
        self.assertNotIn("{", message)
        return message

    def test_corrupt_blob(self):
        with Ollama() as o:
            o.create("tiny", model_folder(o.tmp / "m", "llama-mha-tied-f16"), MODELFILE)
            blob = max((o.models / "blobs").iterdir(), key=lambda p: p.stat().st_size)
            data = bytearray(blob.read_bytes())
            data[0:8] = b"\xff" * 8
            blob.write_bytes(bytes(data))
            self.check_reaches_user(o, "tiny", blob.name, "not the one it is named by")

    def test_bad_runner_setting(self):
        with Ollama(env={"AIRLLM_COMPRESSION": "3bit"}) as o:
            o.create("tiny", model_folder(o.tmp / "m", "llama-mha-tied-f16"), MODELFILE)
            self.check_reaches_user(o, "tiny", "AIRLLM_COMPRESSION '3bit' is not none, 8bit or 4bit")

    def test_missing_runner_binary(self):
        with Ollama() as o:
            o.create("tiny", model_folder(o.tmp / "m", "llama-mha-tied-f16"), MODELFILE)
            (o.lib / "ollama-airllm").unlink()
            self.check_reaches_user(o, "tiny", "ollama-airllm binary not found", str(o.lib / "ollama-airllm"))

    def test_request_errors_come_back_as_one_plain_message(self):
        with Ollama() as o:
            o.create("tiny", model_folder(o.tmp / "m", "llama-mha-tied-f16"), MODELFILE)
            # Ollama truncates nothing for this runner: with num_keep -1 (keep everything) it refuses what its
            # context cannot hold.
            status, body = o.request("POST", "/api/generate", {"model": "tiny", "prompt": "layer " * 200,
                                                               "raw": True, "stream": False,
                                                               "options": {"num_keep": -1}})
            self.assertEqual(status, 400, body)
            message = json.loads(body)["error"]
            self.assertRegex(message, r"^the prompt has \d+ tokens, more than the context of 256 can hold")


class ContextOverflow(unittest.TestCase):
    def test_a_prompt_longer_than_the_context_keeps_its_start_and_end_as_for_llama_server(self):
        with Ollama() as o:
            o.create("tiny", model_folder(o.tmp / "m", "llama-mha-tied-f16"), MODELFILE)
            # Ollama's default num_keep (4) and the newest tokens: 256 positions less half of 252.
            status, body = o.request("POST", "/api/generate", {"model": "tiny", "prompt": "layer " * 200,
                                                               "raw": True, "stream": False})
            self.assertEqual(status, 200, body)
            answer = json.loads(body)
            self.assertEqual(answer["prompt_eval_count"], 130)
            self.assertEqual(answer["done_reason"], "length")
            self.assertRegex(o.log_tail(200), r"the prompt's \d+ tokens do not fit the context of 256 with room to "
                                              r"answer: kept the first 4 and the last 126")


class Routing(unittest.TestCase):
    def test_two_models_one_after_the_other(self):
        # OLLAMA_MAX_LOADED_MODELS=1 stands in for a VRAM budget that holds one model: the second
        # request evicts the first; both answer.
        with Ollama(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as o:
            o.create("first", model_folder(o.tmp / "a", "llama-mha-tied-f16"), MODELFILE)
            o.create("second", model_folder(o.tmp / "b", "qwen2-bias-tied"), MODELFILE)
            self.assertEqual(generate(o, "first")[0], 200)
            first = o.runners()
            self.assertEqual(len(first), 1)
            status, body = generate(o, "second")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["eval_count"], 8)
            deadline = time.time() + 10
            while any(alive(p) for p in first) and time.time() < deadline:
                time.sleep(0.1)
            self.assertFalse(any(alive(p) for p in first), "the first model's runner was not stopped")
            self.assertEqual([m["name"] for m in json.loads(o.get("/api/ps")[1])["models"]], ["second:latest"])
        # Without the limit both stay loaded, each in its own runner.
        with Ollama() as o:
            o.create("first", model_folder(o.tmp / "a", "llama-mha-tied-f16"), MODELFILE)
            o.create("second", model_folder(o.tmp / "b", "qwen2-bias-tied"), MODELFILE)
            self.assertEqual(generate(o, "first")[0], 200)
            self.assertEqual(generate(o, "second")[0], 200)
            self.assertEqual(len(o.runners()), 2)

    def test_mlx_runtime_takes_safetensors_unless_forced(self):
        for force in ("0", "1"):
            with self.subTest(AIRLLM_FORCE=force), Ollama(env={"AIRLLM_FORCE": force}) as o:
                o.create("tiny", model_folder(o.tmp / "m", "llama-mha-tied-f16"), MODELFILE)
                # A stand-in MLX runtime: upstream's check is only that lib/ollama/mlx_* exists.
                (o.lib / "mlx_cuda_v13").mkdir()
                status, body = generate(o, "tiny")
                used_airllm = "using ollama-airllm for a safetensors model" in o.log_path.read_text()
                if force == "1":
                    self.assertEqual(status, 200, body)
                    self.assertTrue(used_airllm)
                else:
                    # Upstream's MLX runner has no MLX libraries here and fails: what matters is
                    # that it, not ollama-airllm, was asked.
                    self.assertFalse(used_airllm)
                    self.assertIn("starting mlx runner subprocess", o.log_path.read_text())

    def test_gguf_models_go_to_the_runner_when_forced_and_stay_with_llama_server_otherwise(self):
        # A GGUF model as `ollama pull` stores one: the tiny Q4_K_M Llama of tests/fixtures/gguf-models.
        gguf = ROOT / "tests" / "fixtures" / "gguf-models" / "llama-q4_k_m.gguf"
        prompt = "The quick brown fox"
        want = airllm_generate(gguf, prompt, 8)
        for force in ("1", "0"):
            server = Ollama(env={"AIRLLM_FORCE": force, "AIRLLM_GGUF": "auto"})
            pull_gguf(server.models, "tiny-gguf", gguf, "{{ .Prompt }}", {"stop": ["<|eot_id|>"]})
            with self.subTest(AIRLLM_FORCE=force), server as o:
                status, body = o.request("POST", "/api/generate", {
                    "model": "tiny-gguf", "prompt": prompt, "stream": False,
                    "options": {"temperature": 0, "num_predict": 8}})
                log = o.log_path.read_text()
                if force == "1":
                    self.assertEqual(status, 200, body + o.log_tail())
                    self.assertIn("ollama-airllm runs this GGUF model", log)
                    self.assertIn("reason=\"AIRLLM_FORCE=1\"", log)
                    answer = json.loads(body)
                    self.assertEqual(answer["response"], want["text"])
                    self.assertEqual(answer["prompt_eval_count"], want["prompt_tokens"])
                    self.assertEqual(len(o.runners()), 1)
                else:
                    # No GPU here, so auto leaves it to llama-server (not built for these tests): what
                    # matters is that ollama-airllm was not asked.
                    self.assertNotIn("ollama-airllm runs this GGUF model", log)
                    self.assertEqual(o.runners(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
