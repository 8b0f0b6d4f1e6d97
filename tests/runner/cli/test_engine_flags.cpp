// The engine flags as the commands read them, resolved against the service's variables: flags over
// variables over defaults, each bad value an error naming where it came from.
#include <doctest/doctest.h>

#include <cstdlib>

#include "runner/cli/engine_flags.h"

namespace {

// Parses `args` as a command's engine options; the first error, if any.
std::string parse(runner_cli::EngineFlags& flags, const std::vector<std::string>& args) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto taken = runner_cli::parse_engine_option(args, i, flags);
        REQUIRE_MESSAGE(taken, args[i]);
        if (!taken->ok()) return taken->error().message;
    }
    return "";
}

// The engine's variables as `vars` say, the others unset, until it goes out of scope: a whole run of the
// binary must not hand one case's variables to the next (the store tests run the CLI, which reads them).
class EnvScope {
  public:
    explicit EnvScope(const std::vector<std::pair<const char*, const char*>>& vars) {
        clear();
        for (const auto& [name, value] : vars) ::setenv(name, value, 1);
    }
    ~EnvScope() { clear(); }
    EnvScope(const EnvScope&) = delete;
    EnvScope& operator=(const EnvScope&) = delete;

  private:
    static void clear() {
        for (const char* name : {"AIRLLM_DEVICE", "AIRLLM_VRAM_BUDGET", "AIRLLM_COMPRESSION", "AIRLLM_KV_CACHE",
                                 "AIRLLM_KV_NEAR_TOKENS", "AIRLLM_GPU_GRAPHS", "AIRLLM_HOST_SHARE"})
            ::unsetenv(name);
    }
};

}  // namespace

TEST_CASE("engine flags: without flags or variables, the defaults") {
    const EnvScope env({});
    const auto o = runner_cli::resolve_engine_options({});
    REQUIRE(o.ok());
    CHECK(o->device.kind == runner::Device::Kind::automatic);
    CHECK(o->device.named_as == "AIRLLM_DEVICE=auto");
    CHECK_FALSE(o->vram_budget);
    CHECK(o->compression == runner::Compression::none);
    CHECK(o->kv_type == runner::KvType::f16);
    CHECK(o->host_share == -1);
    CHECK(o->max_batch == 512);
    CHECK_FALSE(o->kv_near_tokens);  // the engine's default
    CHECK_FALSE(o->gpu_graphs);      // the backend's
}

TEST_CASE("engine flags: the service's variables are read, and flags win over them") {
    const EnvScope env({{"AIRLLM_DEVICE", "hip:1"},
                        {"AIRLLM_VRAM_BUDGET", "8GiB"},
                        {"AIRLLM_COMPRESSION", "4bit"},
                        {"AIRLLM_KV_CACHE", "f32"},
                        {"AIRLLM_KV_NEAR_TOKENS", "16384"},
                        {"AIRLLM_GPU_GRAPHS", "1"},
                        {"AIRLLM_HOST_SHARE", "65"}});
    const auto from_env = runner_cli::resolve_engine_options({});
    REQUIRE(from_env.ok());
    CHECK(from_env->device.kind == runner::Device::Kind::gpu);
    CHECK(from_env->device.index == 1);
    CHECK(from_env->device.named_as == "AIRLLM_DEVICE=hip:1");
    CHECK(from_env->vram_budget == std::optional<std::uint64_t>(8ull << 30));
    CHECK(from_env->compression == runner::Compression::q4);
    CHECK(from_env->kv_type == runner::KvType::f32);
    CHECK(from_env->kv_near_tokens == std::optional<int>(16384));
    CHECK(from_env->gpu_graphs == std::optional<bool>(true));
    CHECK(from_env->host_share == 65);

    runner_cli::EngineFlags flags;
    REQUIRE(parse(flags, {"--device",     "cuda:0", "--vram-budget", "512MiB", "--compression",    "8bit",
                          "--kv-cache",   "f16",    "--host-share",  "auto",   "--threads",        "3",
                          "--max-batch",  "64",     "--ram-budget",  "2GiB",   "--kv-near-tokens", "0",
                          "--gpu-graphs", "off"})
                .empty());
    const auto o = runner_cli::resolve_engine_options(flags);
    REQUIRE(o.ok());
    CHECK(o->device.index == 0);
    CHECK(o->device.named_as == "--device cuda:0");
    CHECK(o->vram_budget == std::optional<std::uint64_t>(512ull << 20));
    CHECK(o->compression == runner::Compression::q8);
    CHECK(o->kv_type == runner::KvType::f16);
    CHECK(o->host_share == -1);
    CHECK(o->threads == 3);
    CHECK(o->max_batch == 64);
    CHECK(o->ram_budget == 2ull << 30);
    CHECK(o->kv_near_tokens == std::optional<int>(0));
    CHECK(o->gpu_graphs == std::optional<bool>(false));
}

TEST_CASE("engine flags: a bad variable is an error naming it and its value") {
    for (const auto& [name, value, message] :
         {std::tuple{"AIRLLM_DEVICE", "tpu:0", "AIRLLM_DEVICE 'tpu:0' is not a device: use cpu, cuda:N, hip:N or auto"},
          std::tuple{"AIRLLM_VRAM_BUDGET", "lots", "AIRLLM_VRAM_BUDGET 'lots' is not a size such as 8GiB"},
          std::tuple{"AIRLLM_COMPRESSION", "2bit", "AIRLLM_COMPRESSION '2bit' is not none, 8bit or 4bit"},
          std::tuple{"AIRLLM_KV_CACHE", "f8", "AIRLLM_KV_CACHE 'f8' is not f16 or f32"},
          std::tuple{"AIRLLM_KV_NEAR_TOKENS", "8k", "AIRLLM_KV_NEAR_TOKENS '8k' is not a count of positions"},
          std::tuple{"AIRLLM_GPU_GRAPHS", "yes", "AIRLLM_GPU_GRAPHS 'yes' is not 1 or 0 (on or off)"},
          std::tuple{"AIRLLM_HOST_SHARE", "70%", "AIRLLM_HOST_SHARE '70%' is not a percentage (0 to 100) or auto"}}) {
        CAPTURE(name);
        const EnvScope env({std::pair{name, value}});
        const auto o = runner_cli::resolve_engine_options({});
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().message == message);
    }
}

TEST_CASE("engine flags: a bad flag value is refused as it is read") {
    for (const auto& [args, message] :
         {std::pair{std::vector<std::string>{"--device", "gpu:-1"},
                    "--device 'gpu:-1' is not a device: use cpu, cuda:N, hip:N or auto"},
          std::pair{std::vector<std::string>{"--host-share", "101"},
                    "--host-share '101' is not a percentage (0 to 100) or auto"},
          std::pair{std::vector<std::string>{"--threads", "-1"}, "--threads '-1' is not a count"},
          std::pair{std::vector<std::string>{"--max-batch", "0"}, "--max-batch '0' is not a count"},
          std::pair{std::vector<std::string>{"--kv-near-tokens", "-8"}, "--kv-near-tokens '-8' is not a count"},
          std::pair{std::vector<std::string>{"--kv-cache", "bf16"}, "--kv-cache 'bf16' is not f16 or f32"},
          std::pair{std::vector<std::string>{"--gpu-graphs", "auto"}, "--gpu-graphs 'auto' is not on or off (1 or 0)"},
          std::pair{std::vector<std::string>{"--ram-budget", "1XB"}, "--ram-budget '1XB' is not a size such as 8GiB"},
          std::pair{std::vector<std::string>{"--compression"}, "--compression needs a value"}}) {
        CAPTURE(args[0]);
        runner_cli::EngineFlags flags;
        CHECK(parse(flags, args) == message);
    }
    runner_cli::EngineFlags flags;
    std::size_t i = 0;
    CHECK_FALSE(runner_cli::parse_engine_option({"--ctx", "5"}, i, flags));
}
