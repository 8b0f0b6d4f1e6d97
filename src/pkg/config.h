// ollama-airllm-rocm.yaml: everything about the recipe that varies, parsed strictly. Unknown keys,
// wrong types and impossible values are all reported, each with file, line and column.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace pkg {

struct GitPin {
    std::string repository;  // https:// or file:// (tests) URL of a git repository
    std::string tag;
    std::string commit;  // 40 hex digits; may be empty for llama.cpp until `ollama-pkg update` resolves it
};

struct ServiceConfig {
    std::string listen = "127.0.0.1:11434";
    std::string models_dir = "/var/lib/ollama";
    std::string hip_visible_devices;                               // empty: every GPU ROCm sees
    std::vector<std::pair<std::string, std::string>> environment;  // in file order
};

struct RunnerConfig {
    std::string compression = "none";  // none, 8bit, 4bit
    std::string vram_budget = "auto";  // auto or a size such as 20GiB
    std::string device = "hip:0";
    bool force = false;
    // GGUF models that do not fit in VRAM: "auto" runs them in ollama-airllm (measured ahead of
    // llama.cpp's partial offload, docs/benchmarks.md), "off" leaves every GGUF model to llama-server.
    std::string gguf = "auto";
};

struct Config {
    std::string maintainer;
    int pkgrel = 1;
    GitPin upstream;
    std::string upstream_module_sum;  // the Go module's h1: sum at upstream.tag; tools/build-ollama checks it
    GitPin llama_cpp;
    std::vector<std::string> gpu_targets;  // empty means auto: rocm-probe on the build machine
    ServiceConfig service;
    RunnerConfig runner;
};

// Every problem found, one per line, "file:line:column: message".
common::Result<Config> parse_config(const std::string& text, const std::string& file);
common::Result<Config> load_config(const std::filesystem::path& path);

// Whether service.listen is a loopback address (127.0.0.0/8, localhost, [::1]): Ollama's API has no
// authentication, so anything else opens it to whoever reaches that address.
bool is_loopback_listen(const std::string& listen);

// pkgver from an upstream tag: "v0.32.15" -> "0.32.15", "v0.33.0-rc2" -> "0.33.0rc2".
std::string pkgver_from_tag(const std::string& tag);

}  // namespace pkg
