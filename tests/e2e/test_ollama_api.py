"""The patched Ollama serving a safetensors model through ollama-airllm, driven the way users drive it:
the ollama CLI, Ollama's API and the OpenAI-compatible API. Every answer is checked against
`ollama-airllm generate` (greedy, CPU) on the prompt Ollama must have rendered: equal text means the
runner received exactly that prompt."""

import json
import sys
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import Ollama, airllm_generate, llama3_prompt, model_folder, upstream_template_source  # noqa: E402

N = 12
MODELFILE = f"PARAMETER temperature 0\nPARAMETER num_predict {N}\n"


class OllamaApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Ollama().__enter__()
        o = cls.server
        # A Llama 3 style model: its tokenizer_config.json carries Llama 3's chat template; its context
        # is Ollama's default on a machine without a GPU (the fixture's 256 tokens hold few turns of
        # a 384-token vocabulary).
        cls.folder = model_folder(o.tmp / "llama3", "llama-gqa4-llama3rope", max_position_embeddings=4096,
                                  tokenizer_config={"chat_template": upstream_template_source("llama3-instruct")})
        cls.create = o.create("chat", cls.folder, MODELFILE)

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def expect(self, prompt, n=N):
        return airllm_generate(self.folder, prompt, n)["text"]

    def test_create_names_the_chat_template(self):
        self.assertIn("using autodetected template llama3-instruct", self.create.stderr + self.create.stdout)
        show = self.server.post_json("/api/show", {"model": "chat"})
        self.assertIn("<|start_header_id|>", show["template"])
        self.assertIn("<|eot_id|>", show["parameters"])
        self.assertEqual(show["details"]["format"], "safetensors")
        tags = json.loads(self.server.get("/api/tags")[1])
        self.assertIn("chat:latest", [m["name"] for m in tags["models"]])

    def test_ollama_run_equals_generate_on_the_rendered_prompt(self):
        r = self.server.cli("run", "chat", "Hello there")
        want = self.expect(llama3_prompt([{"role": "user", "content": "Hello there"}]))
        self.assertTrue(want.strip(), "the reference produced no text")
        self.assertEqual(r.stdout.strip(), want.strip())

    def test_generate_raw_streamed_and_not(self):
        want = self.expect("ROCm runs on")
        whole = self.server.post_json("/api/generate", {"model": "chat", "prompt": "ROCm runs on", "raw": True,
                                                        "stream": False})
        self.assertEqual(whole["response"], want)
        self.assertEqual(whole["eval_count"], N)
        self.assertEqual(whole["done_reason"], "length")
        self.assertGreater(whole["prompt_eval_count"], 0)
        parts = self.server.post_lines("/api/generate", {"model": "chat", "prompt": "ROCm runs on", "raw": True})
        self.assertGreater(len(parts), 2)
        self.assertEqual("".join(p["response"] for p in parts), want)
        self.assertTrue(parts[-1]["done"])

    def test_generate_with_system_renders_the_template(self):
        body = {"model": "chat", "prompt": "Name a GPU", "system": "You are terse.", "stream": False}
        want = self.expect(llama3_prompt([{"role": "system", "content": "You are terse."},
                                          {"role": "user", "content": "Name a GPU"}]))
        self.assertEqual(self.server.post_json("/api/generate", body)["response"], want)

    def test_chat_with_a_system_message_and_several_turns(self):
        messages = [{"role": "system", "content": "You answer in one word."},
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "Hi."},
                    {"role": "user", "content": "Which card?"}]
        want = self.expect(llama3_prompt(messages))
        whole = self.server.post_json("/api/chat", {"model": "chat", "messages": messages, "stream": False})
        self.assertEqual(whole["message"]["content"], want)
        self.assertEqual(whole["message"]["role"], "assistant")
        parts = self.server.post_lines("/api/chat", {"model": "chat", "messages": messages})
        self.assertEqual("".join(p["message"]["content"] for p in parts), want)

    def test_the_next_chat_turn_answers_from_the_runners_prompt_cache(self):
        # A coding agent resends the whole conversation every turn: the runner keeps what its cache holds
        # across Ollama's requests, and the answer is the one a run from scratch gives.
        first = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Which GPU?"}]
        one = self.server.post_json("/api/chat", {"model": "chat", "messages": first, "stream": False})
        self.assertEqual(one["message"]["content"], self.expect(llama3_prompt(first)))
        second = first + [{"role": "assistant", "content": one["message"]["content"]},
                          {"role": "user", "content": "And how much memory?"}]
        two = self.server.post_json("/api/chat", {"model": "chat", "messages": second, "stream": False})
        whole = airllm_generate(self.folder, llama3_prompt(second), N)
        self.assertEqual(two["message"]["content"], whole["text"])
        # The whole prompt, as Ollama counts it for every runner (opencode sizes its context by it).
        self.assertEqual(two["prompt_eval_count"], whole["prompt_tokens"])
        # The runner Ollama started still holds that turn: asked for it again on its own port, it runs
        # the last prompt token only.
        runners = self.server.runners()
        self.assertEqual(len(runners), 1)
        timings = runner_completion(runners[0], llama3_prompt(second))["timings"]
        self.assertEqual(timings["prompt_n"], 1)
        self.assertEqual(timings["cache_n"], whole["prompt_tokens"] - 1)

    def test_structured_output_follows_the_schema_as_generate_does(self):
        # A pydantic-style schema through /api/chat: Ollama hands the format to the runner, which samples
        # only what the schema allows; greedy, the answer is `generate --format` on the rendered prompt.
        schema = {"type": "object", "title": "Card",
                  "properties": {"vendor": {"enum": ["AMD", "NVIDIA"]}, "vram_gb": {"type": "integer"},
                                 "tags": {"type": "array", "items": {"type": "string", "maxLength": 4},
                                          "maxItems": 2}},
                  "required": ["vendor", "vram_gb", "tags"]}
        messages = [{"role": "user", "content": "Describe a GPU as JSON."}]
        body = {"model": "chat", "messages": messages, "stream": False, "format": schema,
                "options": {"num_predict": 120}}
        answer = self.server.post_json("/api/chat", body)["message"]["content"]
        want = airllm_generate(self.folder, llama3_prompt(messages), 120, ("--format", json.dumps(schema)))["text"]
        self.assertEqual(answer, want)
        card = json.loads(answer)
        self.assertEqual(list(card), ["vendor", "vram_gb", "tags"])
        self.assertIn(card["vendor"], ["AMD", "NVIDIA"])
        self.assertIsInstance(card["vram_gb"], int)
        self.assertLessEqual(len(card["tags"]), 2)
        # A keyword the runner cannot enforce is an error naming it, not an answer outside the schema.
        bad = dict(body, format={"type": "string", "pattern": "^[A-Z]+$"})
        status, text = self.server.request("POST", "/api/chat", bad, 300)
        self.assertGreaterEqual(status, 400)
        self.assertIn("pattern", text)

    def test_logprobs_reach_the_user_one_per_token(self):
        body = {"model": "chat", "prompt": "ROCm runs on", "raw": True, "stream": False, "logprobs": True,
                "top_logprobs": 2}
        whole = self.server.post_json("/api/generate", body)
        self.assertEqual(whole["response"], self.expect("ROCm runs on"))
        logprobs = whole["logprobs"]
        self.assertEqual(len(logprobs), whole["eval_count"])
        self.assertEqual("".join(l["token"] for l in logprobs), whole["response"])
        for l in logprobs:
            self.assertLessEqual(l["logprob"], 0)
            self.assertEqual(len(l["top_logprobs"]), 2)
            # Greedy: the token is the most likely one.
            self.assertEqual(l["top_logprobs"][0]["token"], l["token"])
        parts = self.server.post_lines("/api/generate", dict(body, stream=True))
        self.assertEqual([l["token"] for p in parts for l in p.get("logprobs") or []],
                         [l["token"] for l in logprobs])

    def test_openai_chat_completions_streamed_and_not(self):
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        want = self.expect(llama3_prompt(messages))
        body = {"model": "chat", "messages": messages, "temperature": 0, "max_tokens": N}
        whole = self.server.post_json("/v1/chat/completions", body)
        self.assertEqual(whole["choices"][0]["message"]["content"], want)
        self.assertEqual(whole["choices"][0]["finish_reason"], "length")
        self.assertEqual(whole["usage"]["completion_tokens"], N)
        chunks = self.server.post_lines("/v1/chat/completions", dict(body, stream=True))
        self.assertEqual("".join(c["choices"][0]["delta"].get("content", "") for c in chunks), want)

    def test_tools_need_a_template_that_renders_them(self):
        # llama3-instruct renders no .Tools: Ollama refuses tool calls for it (opencode needs a Qwen3
        # import, whose renderer handles tools, or a Modelfile TEMPLATE that renders .Tools).
        tool = {"type": "function", "function": {"name": "read", "description": "read a file",
                                                 "parameters": {"type": "object", "properties": {}}}}
        status, body = self.server.request("POST", "/v1/chat/completions", {
            "model": "chat", "messages": [{"role": "user", "content": "hi"}], "tools": [tool]})
        self.assertEqual(status, 400, body)
        self.assertIn("does not support tools", body)

    def test_openai_completions_and_models(self):
        want = self.expect("ROCm runs on")
        # /v1/completions goes through /api/generate without raw: the template wraps the prompt.
        templated = self.expect(llama3_prompt([{"role": "user", "content": "ROCm runs on"}]))
        whole = self.server.post_json("/v1/completions", {"model": "chat", "prompt": "ROCm runs on",
                                                          "temperature": 0, "max_tokens": N})
        self.assertIn(whole["choices"][0]["text"], (want, templated))
        self.assertEqual(whole["choices"][0]["text"], templated)
        models = json.loads(self.server.get("/v1/models")[1])
        self.assertIn("chat:latest", [m["id"] for m in models["data"]])

    def test_ps_reports_the_runner_and_unloading_ends_it(self):
        o = self.server
        o.post_json("/api/generate", {"model": "chat", "prompt": "x", "raw": True, "stream": False})
        ps = json.loads(o.get("/api/ps")[1])["models"]
        self.assertEqual([m["name"] for m in ps], ["chat:latest"])
        runners = o.runners()
        self.assertEqual(len(runners), 1, "one ollama-airllm process serves the model")
        status = runner_status(runners[0])
        self.assertEqual(ps[0]["size"], status["Memory"])
        self.assertEqual(ps[0]["size_vram"], status["Memory"])
        self.assertEqual(ps[0]["context_length"], status["ContextLength"])
        self.assertEqual(status["ContextLength"], 4096)
        # where the engine put the model, as the load log says it (the e2e runs the CPU engine)
        self.assertTrue(status["Engine"].startswith("CPU"), status["Engine"])
        listed = o.cli("ps").stdout
        self.assertIn("chat:latest", listed)
        self.assertIn("4096", listed)
        # keep_alive 0 unloads: the runner process exits and is reaped, well before Ollama would kill
        # it (5 s after SIGINT) while holding its scheduler.
        o.post_json("/api/generate", {"model": "chat", "keep_alive": 0})
        self.assertTrue(wait_gone(runners, seconds=3), "the runner outlived keep_alive 0 by 3 s")
        self.assertEqual(json.loads(o.get("/api/ps")[1])["models"], [])
        # ollama stop does the same.
        o.post_json("/api/generate", {"model": "chat", "prompt": "x", "raw": True, "stream": False})
        runners = o.runners()
        self.assertEqual(len(runners), 1)
        o.cli("stop", "chat")
        self.assertTrue(wait_gone(runners), "the runner outlived ollama stop")


def runner_status(pid):
    """GET /v1/status from the runner process itself, on the port Ollama gave it."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    port = int(args[args.index(b"--port") + 1])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=5) as resp:
        return json.loads(resp.read())


def runner_completion(pid, prompt):
    """A llama-server-style completion on the runner process itself: its timings say what the cache held."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    port = int(args[args.index(b"--port") + 1])
    body = json.dumps({"prompt": prompt, "n_predict": 2, "temperature": 0}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.loads(resp.read())


def wait_gone(pids, seconds=15):
    from harness import alive
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
