"""Real clients of the patched Ollama, installed by tools/install-deps from npm: the official ollama JS
library, and opencode run non-interactively with a provider config for the local Ollama's OpenAI
endpoint. opencode's real request (its system prompt and tool definitions, some 24,000 tokens of a
tiny byte-level vocabulary) goes through Ollama's qwen3-coder renderer to ollama-airllm, and its answer
comes back to opencode."""

import glob
import json
import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import Ollama, airllm_generate, llama3_prompt, model_folder, upstream_template_source  # noqa: E402

CLIENTS = Path(os.environ.get("OAR_E2E_CLIENTS_DIR") or
               Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ollama-airllm-rocm" / "e2e-clients")


def client_path(*parts):
    path = CLIENTS.joinpath("node_modules", *parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run tools/install-deps (it installs the e2e clients from npm)")
    return path


def printable(text):
    return "".join(ch for ch in text if ch.isprintable() and not ch.isspace())


class OllamaJs(unittest.TestCase):
    def test_generate_chat_list_ps(self):
        client_path("ollama")
        with Ollama() as o:
            folder = model_folder(o.tmp / "llama3", "llama-gqa4-llama3rope", max_position_embeddings=4096,
                                  tokenizer_config={"chat_template": upstream_template_source("llama3-instruct")})
            o.create("chat", folder)
            r = subprocess.run(["node", str(Path(__file__).parent / "ollama_js_client.mjs"), o.base, "chat",
                                str(CLIENTS)], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr + "\n" + o.log_tail())
            got = json.loads(r.stdout)
            want = airllm_generate(folder, "ROCm runs on", 12)["text"]
            want_chat = airllm_generate(folder, llama3_prompt([
                {"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": "Which card?"}]), 12)["text"]
        self.assertEqual(got["generate"], want)
        self.assertEqual(got["streamed"], want)
        self.assertEqual(got["eval_count"], 12)
        self.assertEqual(got["chat"], want_chat)
        self.assertEqual(got["models"], ["chat:latest"])
        self.assertEqual(got["loaded"], ["chat:latest"])


class Opencode(unittest.TestCase):
    def test_opencode_run_through_ollama_to_the_runner(self):
        """The smallest setup opencode works with: a Qwen3 model (Ollama's qwen3-coder renderer and
        qwen3 parser give it the tools capability opencode requires), a context of 32,768 tokens for
        its ~31 KB system prompt and tool definitions (OLLAMA_CONTEXT_LENGTH; the runner takes the
        smaller of it and the model's), temperature 0 and 32 output tokens from the provider config."""
        opencode = client_path(".bin", "opencode")
        server = Ollama(env={"OLLAMA_CONTEXT_LENGTH": "32768", "OLLAMA_DEBUG_LOG_REQUESTS": "1"})
        # Ollama writes the request log into a new folder under TMPDIR.
        logs = server.tmp / "request-logs"
        logs.mkdir()
        server.env["TMPDIR"] = str(logs)
        with server as o:
            folder = model_folder(o.tmp / "coder", "qwen3-qknorm-headdim", max_position_embeddings=32768)
            o.create("coder", folder)
            self.assertIn("tools", o.post_json("/api/show", {"model": "coder"})["capabilities"])
            project = o.tmp / "project"
            project.mkdir()
            (project / "opencode.json").write_text(json.dumps({
                "$schema": "https://opencode.ai/config.json",
                "provider": {"ollama": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Ollama (local)",
                    "options": {"baseURL": o.base + "/v1"},
                    "models": {"coder": {"name": "coder", "temperature": True,
                                         "limit": {"context": 32768, "output": 32}}}}},
                "model": "ollama/coder",
                "agent": {"build": {"temperature": 0}},
            }))
            run = subprocess.run([str(opencode), "run", "List the files here"], cwd=project,
                                 env=dict(o.env, PATH=f"{opencode.parent}:{o.env['PATH']}"),
                                 capture_output=True, text=True, timeout=600)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr + "\n" + o.log_tail())

            # opencode's main request, as Ollama logged it: system prompt, tools, temperature 0.
            bodies = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(logs / "*" / "*_body.json")))]
            agent = [b for b in bodies if b.get("tools")]
            self.assertEqual(len(agent), 1, [list(b) for b in bodies])
            request = agent[0]
            self.assertEqual(request["messages"][0]["role"], "system")
            self.assertGreater(len(request["messages"][0]["content"]), 5000)
            self.assertIn("List the files here", json.dumps(request["messages"]))
            tools = {t["function"]["name"] for t in request["tools"]}
            self.assertTrue({"bash", "read", "edit", "grep"} <= tools, tools)
            self.assertEqual(request["temperature"], 0)

            # The same request again, whole: the runner saw all of it (prompt tokens), and greedy
            # decoding gives the answer opencode printed (compared without white space and control
            # characters, which a terminal program may render its own way).
            replay = o.post_json("/v1/chat/completions", dict(request, stream=False, stream_options=None), timeout=600)
            self.assertGreater(replay["usage"]["prompt_tokens"], 20000)
            answer = replay["choices"][0]["message"].get("content") or ""
            self.assertTrue(printable(answer), repr(answer))
            self.assertEqual(printable(run.stdout), printable(answer))
            print(f"\nopencode: {len(request['messages'][0]['content'])} characters of system prompt, "
                  f"{len(tools)} tools, {replay['usage']['prompt_tokens']} prompt tokens at the runner; "
                  f"answer {answer!r}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
