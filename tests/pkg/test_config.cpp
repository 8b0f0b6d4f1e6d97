#include <doctest/doctest.h>

#include <algorithm>

#include "pkg/config.h"

namespace {

const std::string valid = R"(maintainer: Jane Doe <jane@example.org>
pkgrel: 2
upstream:
  repository: https://github.com/ollama/ollama.git
  tag: v0.32.15
  commit: b7871fc0d1d82fe109536efa3e0e8e411c766c75
llama_cpp:
  repository: https://github.com/ggml-org/llama.cpp.git
  tag: b10488
gpu_targets: [gfx1100, "gfx90a:xnack-"]
service:
  listen: 127.0.0.1:11434
  models_dir: /run/media/jane/CACHE1/airllm
  hip_visible_devices: "0"
  environment:
    OLLAMA_KEEP_ALIVE: 5m
    OLLAMA_NUM_PARALLEL: "2"
runner:
  compression: 4bit
  vram_budget: 20GiB
  device: hip:0
  force: true
  gguf: off
)";

std::string with(const std::string& from, const std::string& to) {
    std::string text = valid;
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("a complete configuration parses into every field") {
    const auto c = pkg::parse_config(valid, "c.yaml");
    REQUIRE(c.ok());
    CHECK(c->maintainer == "Jane Doe <jane@example.org>");
    CHECK(c->pkgrel == 2);
    CHECK(c->upstream.tag == "v0.32.15");
    CHECK(c->upstream.commit == "b7871fc0d1d82fe109536efa3e0e8e411c766c75");
    CHECK(c->upstream_module_sum.empty());
    CHECK(c->llama_cpp.tag == "b10488");
    CHECK(c->llama_cpp.commit.empty());
    CHECK(c->gpu_targets == std::vector<std::string>{"gfx1100", "gfx90a:xnack-"});
    CHECK(c->service.models_dir == "/run/media/jane/CACHE1/airllm");
    CHECK(c->service.hip_visible_devices == "0");
    REQUIRE(c->service.environment.size() == 2);
    CHECK(c->service.environment[0] == std::pair<std::string, std::string>{"OLLAMA_KEEP_ALIVE", "5m"});
    CHECK(c->runner.compression == "4bit");
    CHECK(c->runner.vram_budget == "20GiB");
    CHECK(c->runner.force);
    CHECK(c->runner.gguf == "off");
}

TEST_CASE("upstream.module_sum, the Go module's h1: sum that tools/build-ollama checks, is read") {
    const auto c = pkg::parse_config(with("b7871fc0d1d82fe109536efa3e0e8e411c766c75\n",
                                          "b7871fc0d1d82fe109536efa3e0e8e411c766c75\n"
                                          "  module_sum: h1:lnCycypBjS9SoMNeM6FivlYeDRn7mP/zfLG0uJXwmZ4=\n"),
                                     "c.yaml");
    REQUIRE(c.ok());
    CHECK(c->upstream_module_sum == "h1:lnCycypBjS9SoMNeM6FivlYeDRn7mP/zfLG0uJXwmZ4=");
}

TEST_CASE("defaults fill what a minimal configuration leaves out") {
    const auto c = pkg::parse_config(R"(upstream: {repository: "https://github.com/ollama/ollama.git", tag: v0.32.15,
  commit: b7871fc0d1d82fe109536efa3e0e8e411c766c75}
llama_cpp: {repository: "https://github.com/ggml-org/llama.cpp.git", tag: b10488}
)",
                                     "c.yaml");
    REQUIRE(c.ok());
    CHECK(c->pkgrel == 1);
    CHECK(c->gpu_targets.empty());
    CHECK(c->service.listen == "127.0.0.1:11434");
    CHECK(c->service.models_dir == "/var/lib/ollama");
    CHECK(c->runner.compression == "none");
    CHECK_FALSE(c->runner.force);
    CHECK(c->runner.gguf == "auto");
}

TEST_CASE("bad configurations name file, line, column and the problem") {
    const struct {
        std::string text;
        const char* expect;
    } rows[] = {
        {with("pkgrel: 2", "pkgrell: 2"),
         "c.yaml:2:1: unknown key 'pkgrell' in the configuration (known keys: maintainer, pkgrel"},
        {with("pkgrel: 2", "pkgrel: 0"), "c.yaml:2:9: pkgrel must be a positive integer, found 0"},
        {with("pkgrel: 2", "pkgrel: two"), "c.yaml:2:9: pkgrel must be a positive integer, found 'two'"},
        {with("tag: v0.32.15", "tag: 0.32.15"), "c.yaml:5:8: upstream.tag '0.32.15' is not an Ollama release tag"},
        {with("commit: b7871fc0d1d82fe109536efa3e0e8e411c766c75", "commit: b7871fc0d"),
         "c.yaml:6:11: upstream.commit 'b7871fc0d' is not 40 lowercase hex digits"},
        {with("  commit: b7871fc0d1d82fe109536efa3e0e8e411c766c75\n", ""), "missing key 'commit' in upstream"},
        {with("b7871fc0d1d82fe109536efa3e0e8e411c766c75\n",
              "b7871fc0d1d82fe109536efa3e0e8e411c766c75\n  module_sum: sha256:abc\n"),
         "c.yaml:7:15: upstream.module_sum 'sha256:abc' is not a Go module sum"},
        {with("tag: b10488", "tag: b10488\n  module_sum: h1:lnCycypBjS9SoMNeM6FivlYeDRn7mP/zfLG0uJXwmZ4="),
         "unknown key 'module_sum' in llama_cpp"},
        {with("tag: b10488", "tag: master"), "c.yaml:9:8: llama_cpp.tag 'master' is not a llama.cpp build tag"},
        {with("repository: https://github.com/ollama/ollama.git", "repository: git@github.com:ollama/ollama"),
         "upstream.repository 'git@github.com:ollama/ollama' is not an https:// or file:// URL"},
        {with("[gfx1100, \"gfx90a:xnack-\"]", "[gfx1100, rx7900]"),
         "c.yaml:10:24: gpu_targets entry 'rx7900' is not a gfx target"},
        {with("[gfx1100, \"gfx90a:xnack-\"]", "[gfx1100, gfx1100]"), "gpu_targets lists 'gfx1100' twice"},
        {with("[gfx1100, \"gfx90a:xnack-\"]", "all"), "gpu_targets must be 'auto' or a non-empty list"},
        {with("127.0.0.1:11434", "127.0.0.1:99999"),
         "c.yaml:12:11: service.listen '127.0.0.1:99999' has a port outside 1-65535"},
        {with("127.0.0.1:11434", "localhost"), "service.listen 'localhost' is not HOST:PORT"},
        {with("/run/media/jane/CACHE1/airllm", "models"), "service.models_dir 'models' must be an absolute path"},
        {with("/run/media/jane/CACHE1/airllm", "\"/mnt/my models\""), "contains whitespace"},
        {with("/run/media/jane/CACHE1/airllm", "/usr/share/models"), "is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/mnt/../etc"), "must not contain . or .. components"},
        // ReadWritePaths= for these would undo ProtectSystem=strict.
        {with("/run/media/jane/CACHE1/airllm", "/"), "service.models_dir '/' is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/var"), "service.models_dir '/var' is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/home/"), "service.models_dir '/home/' is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/tmp"), "is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/root"), "is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/run"), "is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "/lib/models"), "is a system folder"},
        {with("/run/media/jane/CACHE1/airllm", "\"/srv/models\\x07\""), "contains a control character"},
        {with("OLLAMA_NUM_PARALLEL: \"2\"", "OLLAMA_MODELS: /x"),
         "c.yaml:17:5: service.environment cannot set OLLAMA_MODELS"},
        {with("OLLAMA_NUM_PARALLEL: \"2\"", "PYTHONPATH: /x"), "nothing here is Python"},
        {with("OLLAMA_NUM_PARALLEL: \"2\"", "lower_case: x"), "is not an environment variable name"},
        {with("OLLAMA_NUM_PARALLEL: \"2\"", "OLLAMA_ORIGINS: \"$(rm -rf /)\""),
         "contains a quote, backslash, '$' or newline"},
        {with("compression: 4bit", "compression: 3bit"),
         "c.yaml:19:16: runner.compression '3bit' is not one of none, 8bit, 4bit"},
        {with("vram_budget: 20GiB", "vram_budget: lots"), "runner.vram_budget 'lots' is not 'auto' or a size"},
        {with("device: hip:0", "device: gpu0"), "runner.device 'gpu0' is not cpu, hip:N or cuda:N"},
        {with("force: true", "force: maybe"), "runner.force must be true or false"},
        {with("gguf: off", "gguf: always"), "runner.gguf 'always' is not off or auto"},
        {with("service:\n", "service: on\n"), "c.yaml:12:9: not valid YAML: illegal map value"},
        {"upstream: x\nllama_cpp: []\n", "c.yaml:1:11: 'upstream' must be a mapping"},
        {"upstream: [", "c.yaml:1:1: not valid YAML: end of sequence flow not found"},
        {"", "c.yaml: empty configuration"},
        {"- just\n- a list\n", "'the configuration' must be a mapping"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        const auto c = pkg::parse_config(row.text, "c.yaml");
        REQUIRE_FALSE(c.ok());
        INFO(c.error().message);
        CHECK(c.error().message.find(row.expect) != std::string::npos);
    }
}

TEST_CASE("every problem is reported, not just the first") {
    std::string text = with("pkgrel: 2", "pkgrel: -1");
    text.replace(text.find("compression: 4bit"), 17, "compression: 2bit");
    text.replace(text.find("tag: b10488"), 11, "tags: b10488");
    const auto c = pkg::parse_config(text, "c.yaml");
    REQUIRE_FALSE(c.ok());
    const auto& m = c.error().message;
    CHECK(m.find("pkgrel must be a positive integer") != std::string::npos);
    CHECK(m.find("runner.compression '2bit'") != std::string::npos);
    CHECK(m.find("unknown key 'tags' in llama_cpp") != std::string::npos);
    CHECK(m.find("missing key 'tag' in llama_cpp") != std::string::npos);
    CHECK(std::count(m.begin(), m.end(), '\n') == 3);
}

TEST_CASE("pkgver comes from the tag without 'v' and '-'") {
    CHECK(pkg::pkgver_from_tag("v0.32.15") == "0.32.15");
    CHECK(pkg::pkgver_from_tag("v0.33.0-rc2") == "0.33.0rc2");
}

TEST_CASE("a missing configuration file says so") {
    const auto c = pkg::load_config("/nonexistent/ollama-airllm-rocm.yaml");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message == "/nonexistent/ollama-airllm-rocm.yaml: cannot read the configuration (does it exist?)");
}
