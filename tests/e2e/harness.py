"""Starts the patched upstream Ollama (tools/build-ollama's layout) on a free loopback port with its own
OLLAMA_MODELS and HOME, imports fixture models with `ollama create --experimental`, and stops everything
it started, checking that no runner process outlives it. Standard library only."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("OAR_OLLAMA_DIST", ROOT / "build" / "ollama-dist"))
FIXTURES = ROOT / "tests" / "fixtures" / "models"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """Direct children of pid, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def runner_pids(server_pid):
    out = []
    for pid in children(server_pid):
        try:
            if Path(f"/proc/{pid}/exe").resolve().name == "ollama-airllm":
                out.append(pid)
        except OSError:
            pass
    return out


def model_folder(dest, fixture, **config_changes):
    """A copy of a fixture model with config.json keys (and tokenizer_config.json's, under
    tokenizer_config=...) changed."""
    tokenizer_changes = config_changes.pop("tokenizer_config", {})
    shutil.copytree(FIXTURES / fixture, dest)
    for name, changes in (("config.json", config_changes), ("tokenizer_config.json", tokenizer_changes)):
        if changes:
            data = json.loads((dest / name).read_text())
            data.update(changes)
            (dest / name).write_text(json.dumps(data, indent=2))
    (dest / "reference.json").unlink()
    return dest


class Ollama:
    """One `ollama serve`; use as a context manager."""

    def __init__(self, env=None, lib_dir=None):
        if not (DIST / "bin" / "ollama").exists():
            raise unittest.SkipTest if os.environ.get("OAR_E2E_OPTIONAL") else FileNotFoundError(
                f"{DIST}/bin/ollama not found: build the patched Ollama with tools/build-ollama")
        self.tmp = Path(tempfile.mkdtemp(prefix="oar-e2e-"))
        self.home = self.tmp / "home"
        self.models = self.tmp / "models"
        self.home.mkdir()
        self.models.mkdir()
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.host}"
        self.ollama = self.tmp / "dist" / "bin" / "ollama"
        # A private copy of the layout, so a test may add lib/ollama/mlx_* or drop the runner.
        shutil.copytree(DIST, self.tmp / "dist", symlinks=True)
        self.lib = self.tmp / "dist" / "lib" / "ollama"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "OLLAMA_HOST": self.host,
            "OLLAMA_MODELS": str(self.models),
            "OLLAMA_NOPRUNE": "1",
            "AIRLLM_DEVICE": "cpu",
            "LANG": "C.UTF-8",
        }
        self.env.update(env or {})
        self.log_path = self.tmp / "serve.log"
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        if not exc[0]:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"kept {self.tmp} (server log: {self.log_path})")
            print(self.log_tail())

    def start(self):
        self.log = open(self.log_path, "wb")
        # In its own folder: whatever it writes relative to its working directory stays out of the tree.
        self.proc = subprocess.Popen([str(self.ollama), "serve"], env=self.env, stdout=self.log, cwd=self.tmp,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ollama serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get("/api/version")
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"ollama serve did not answer on {self.base} in 60 s:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM to the server; every runner it started must be gone with it (no orphan, no zombie)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        runners = runner_pids(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("ollama serve did not stop within 30 s of SIGTERM")
        finally:
            self.log.close()
        deadline = time.time() + 10
        while any(alive(p) for p in runners) and time.time() < deadline:
            time.sleep(0.1)
        left = [p for p in runners if alive(p)]
        if left:
            for p in left:
                os.kill(p, signal.SIGKILL)
            raise AssertionError(f"runner processes {left} outlived ollama serve")

    def log_tail(self, n=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cli(self, *args, timeout=300, check=True, input=None):
        """`ollama ARGS` as a user would run it against this server; returns the completed process."""
        r = subprocess.run([str(self.ollama), *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"ollama {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}\n"
                                 f"server log:\n{self.log_tail()}")
        return r

    def create(self, name, folder, modelfile=None):
        args = ["create", name, "--experimental"]
        if modelfile is not None:
            path = Path(folder).parent / f"{name.replace(':', '_')}.Modelfile"
            path.write_text(f"FROM {folder}\n{modelfile}")
            args += ["-f", str(path)]
        else:
            args += ["-f", str(self.write_from(folder))]
        return self.cli(*args)

    def write_from(self, folder):
        path = Path(folder).parent / (Path(folder).name + ".Modelfile")
        path.write_text(f"FROM {folder}\n")
        return path

    def request(self, method, path, body=None, timeout=300):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get(self, path):
        return self.request("GET", path, timeout=5)

    def post(self, path, body, timeout=300):
        status, text = self.request("POST", path, body, timeout)
        if status != 200:
            raise AssertionError(f"POST {path} -> {status}: {text}\nserver log:\n{self.log_tail()}")
        return text

    def post_json(self, path, body, timeout=300):
        return json.loads(self.post(path, body, timeout))

    def post_lines(self, path, body, timeout=300):
        """A streamed answer: JSON lines (Ollama's API) or SSE `data:` lines (the OpenAI API)."""
        out = []
        for line in self.post(path, body, timeout).splitlines():
            line = line.strip()
            if line.startswith("data: "):
                line = line[len("data: "):]
                if line == "[DONE]":
                    continue
            if line:
                out.append(json.loads(line))
        return out

    def runners(self):
        return runner_pids(self.proc.pid)


def pull_gguf(models, name, gguf, template, params):
    """Stores a GGUF file in an Ollama models folder as `ollama pull` lays it out (the file as the model
    layer, a template and a params layer, a config blob), without the registry: `ollama create` from a
    GGUF would want llama-quantize, which these tests do not build."""
    def blob(data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        (models / "blobs").mkdir(exist_ok=True)
        (models / "blobs" / f"sha256-{digest}").write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}
    layers = [blob(Path(gguf).read_bytes(), "application/vnd.ollama.image.model"),
              blob(template.encode(), "application/vnd.ollama.image.template"),
              blob(json.dumps(params).encode(), "application/vnd.ollama.image.params")]
    config = blob(json.dumps({"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                              "file_type": "Q4_K_M"}).encode(), "application/vnd.docker.container.image.v1+json")
    manifest = models / "manifests" / "registry.ollama.ai" / "library" / name / "latest"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2,
                                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                    "config": config, "layers": layers}))


def airllm_generate(model_folder_path, prompt, num_predict, extra=()):
    """Greedy text from `ollama-airllm generate` on the CPU: what the runner behind Ollama must give."""
    runner = DIST / "lib" / "ollama" / "ollama-airllm"
    r = subprocess.run([str(runner), "generate", str(model_folder_path), "-p", prompt, "-n", str(num_predict),
                        "--temperature", "0", "--json", "--device", "cpu", *extra],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"ollama-airllm generate failed ({r.returncode}): {r.stderr}")
    return json.loads(r.stdout)


def upstream_template_source(name):
    """The Jinja chat template that upstream's template/index.json pairs with a named template, from the
    Go module tools/build-ollama built (the source a real model's tokenizer_config.json carries)."""
    tag = next(line.split(":", 1)[1].strip() for line in (ROOT / "ollama-airllm-rocm.yaml").read_text().splitlines()
               if line.startswith("  tag: v"))
    info = json.loads(subprocess.run(["go", "mod", "download", "-json", f"github.com/ollama/ollama@{tag}"],
                                     capture_output=True, text=True, check=True).stdout)
    index = json.loads((Path(info["Dir"]) / "template" / "index.json").read_text())
    return next(t["template"] for t in index if t["name"] == name)


def llama3_prompt(messages):
    """What upstream's llama3-instruct template renders for these messages."""
    out = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
    return out + "<|start_header_id|>assistant<|end_header_id|>\n\n"
