#include <doctest/doctest.h>

#include "probe/service_plan.h"
#include "replay.h"
#include "support/temp_tree.h"

using namespace test_probe;
using test_support::TempTree;

namespace {

const std::string nodes = "sys/class/kfd/kfd/topology/nodes/";

std::vector<std::pair<std::string, std::string>> assignments(const probe::ProbeReport& report) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& line : probe::service_env(report))
        if (!line.key.empty()) out.emplace_back(line.key, line.value);
    return out;
}

// A tree with rocBLAS kernels for exactly `targets`.
void set_rocblas(const TempTree& tree, std::initializer_list<const char*> targets) {
    std::filesystem::remove_all(tree.root() / "opt/rocm/lib/rocblas/library");
    for (const char* t : targets)
        tree.write(std::string("opt/rocm/lib/rocblas/library/TensileLibrary_lazy_") + t + ".dat", "");
}

}  // namespace

TEST_CASE("RX 7900 XTX needs nothing in /etc/default/ollama") {
    CHECK(assignments(replay(machine("rx7900xtx"))).empty());
}

TEST_CASE("laptop: the iGPU is hidden by UUID and the dGPU needs no override") {
    const auto report = replay(machine("laptop-780m-7600s"));
    const auto env = assignments(report);
    REQUIRE(env.size() == 1);
    CHECK(env[0].first == "ROCR_VISIBLE_DEVICES");
    CHECK(env[0].second == "GPU-4a5b6c7d8e9fa0b1");
    // The 780M would need an override, but it is hidden, so no override line mentions it.
    for (const auto& line : probe::service_env(report)) CHECK(line.key.find("HSA_OVERRIDE") == std::string::npos);
}

TEST_CASE("laptop with a rocBLAS lacking gfx1102: the one visible GPU gets a global override") {
    TempTree tree;
    tree.copy(machine("laptop-780m-7600s") / "sys", "sys");
    set_rocblas(tree, {"gfx1100", "gfx1030"});
    const auto env = assignments(replay(tree.root()));
    REQUIRE(env.size() == 2);
    CHECK(env[0] == std::pair<std::string, std::string>{"ROCR_VISIBLE_DEVICES", "GPU-4a5b6c7d8e9fa0b1"});
    CHECK(env[1] == std::pair<std::string, std::string>{"HSA_OVERRIDE_GFX_VERSION", "11.0.0"});
}

TEST_CASE("without unique ids the iGPU is hidden by index") {
    TempTree tree;
    tree.copy(machine("laptop-780m-7600s") / "sys", "sys");
    std::filesystem::remove(tree.root() / "sys/class/drm/renderD129/device/unique_id");
    auto props = test_support::read_file(tree.root() / (nodes + "2/properties"));
    props.replace(props.find("unique_id "), std::string("unique_id 5358573446706126001").size(), "unique_id 0");
    tree.write(nodes + "2/properties", props);
    const auto env = assignments(replay(tree.root()));
    REQUIRE(env.size() == 1);
    CHECK(env[0].second == "1");
}

TEST_CASE("a natively supported GPU beside one that needs an override: per-node variables") {
    // RX 7900 XTX at node 1 and an RX 6700 XT (gfx1031, 0x73DF) at node 2.
    TempTree tree;
    tree.copy(machine("rx7900xtx") / "sys", "sys");
    auto props = test_support::read_file(machine("rx6800xt") / (nodes + "1/properties"));
    props.replace(props.find("gfx_target_version 100300"), 25, "gfx_target_version 100301");
    props.replace(props.find("device_id 29631"), 15, "device_id 29663");
    props.replace(props.find("drm_render_minor 128"), 20, "drm_render_minor 129");
    tree.write(nodes + "2/properties", props);
    tree.copy(machine("rx7900xtx") / "opt", "opt");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 2);
    CHECK(report.gpus[1].gfx_target() == "gfx1031");
    const auto env = assignments(report);
    REQUIRE(env.size() == 1);
    CHECK(env[0].first == "HSA_OVERRIDE_GFX_VERSION_2");
    CHECK(env[0].second == "10.3.0");
    CHECK(probe::gpu_targets(report.gpus) == "gfx1100;gfx1031");
}

TEST_CASE("two GPUs that both need the same override share one global line") {
    TempTree tree;
    tree.copy(machine("rx6800xt") / "sys", "sys");
    auto props = test_support::read_file(machine("rx6800xt") / (nodes + "1/properties"));
    props.replace(props.find("gfx_target_version 100300"), 25, "gfx_target_version 100302");
    tree.write(nodes + "1/properties", props);
    tree.write(nodes + "2/properties", props);
    set_rocblas(tree, {"gfx1030"});
    const auto env = assignments(replay(tree.root()));
    REQUIRE(env.size() == 1);
    CHECK(env[0] == std::pair<std::string, std::string>{"HSA_OVERRIDE_GFX_VERSION", "10.3.0"});
}

TEST_CASE("overrides already in the environment are reported and checked") {
    auto options = replay_options(machine("rx7900xtx"));
    options.environment = {{"HSA_OVERRIDE_GFX_VERSION", "11.0"},
                           {"HSA_OVERRIDE_GFX_VERSION_1", "11.0.0"},
                           {"HSA_OVERRIDE_GFX_VERSION_FOO", "x"},
                           {"ROCM_PATH", "/nowhere"}};
    const auto report = probe::run_probe(options);
    REQUIRE(report.overrides_in_env.size() == 2);
    const auto& global = report.overrides_in_env[0];
    CHECK(global.variable == "HSA_OVERRIDE_GFX_VERSION");
    CHECK_FALSE(global.parsed.has_value());
    CHECK(global.problem.find("'11.0' is malformed") != std::string::npos);
    const auto& node = report.overrides_in_env[1];
    CHECK(node.variable == "HSA_OVERRIDE_GFX_VERSION_1");
    CHECK(node.problem.empty());
    CHECK(probe::gfx_name(*node.parsed) == "gfx1100");
    const auto lines = probe::service_env(report);
    CHECK(lines[0].comment.find("WARNING") == 0);
    CHECK(lines[0].comment.find("ROCm sees no GPU") != std::string::npos);
    CHECK(lines[1].comment.find("that node") != std::string::npos);
}

TEST_CASE("relevant_environment keeps only what the probe reads") {
    std::string a = "ROCM_PATH=/opt/rocm", b = "HSA_OVERRIDE_GFX_VERSION=10.3.0", c = "HOME=/root", d = "BROKEN";
    char* envp[] = {a.data(), b.data(), c.data(), d.data(), nullptr};
    const auto env = probe::relevant_environment(envp);
    CHECK(env.size() == 2);
    CHECK(env.at("ROCM_PATH") == "/opt/rocm");
    CHECK(env.at("HSA_OVERRIDE_GFX_VERSION") == "10.3.0");
}
