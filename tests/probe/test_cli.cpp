// rocm-probe as users run it: exit codes, messages, formats, rocm-smi loading and permissions.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "replay.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

using namespace test_probe;
using test_support::run_process;
using test_support::TempTree;

namespace {

const std::string probe_bin = OAR_ROCM_PROBE;

std::vector<std::string> probe_args(std::initializer_list<std::string> extra) {
    std::vector<std::string> args = {probe_bin, "--amdgpu-ids", (fixtures() / "amdgpu.ids").string()};
    args.insert(args.end(), extra);
    return args;
}

std::size_t line_count(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("cli: a machine with a GPU exits 0 with the table") {
    const auto r = run_process(probe_args({"--sysfs-root", machine("rx7900xtx").string()}));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("AMD Radeon RX 7900 XTX") != std::string::npos);
    CHECK(r.err.empty());
}

TEST_CASE("cli: no AMD GPU exits 1 with one line saying what was looked at") {
    TempTree tree;
    const auto r = run_process(probe_args({"--sysfs-root", tree.root().string()}));
    CHECK(r.exit_code == 1);
    CHECK(line_count(r.out) == 1);
    CHECK(r.out.rfind("no AMD GPU: ", 0) == 0);
    CHECK(r.out.find("rocm-smi: not used when replaying") != std::string::npos);
}

TEST_CASE("cli: a FIFO in a --sysfs-root tree is skipped, not waited on") {
    TempTree tree;
    tree.copy(machine("rx7900xtx"), "m");
    const auto fifo = tree.root() / "m/sys/class/kfd/kfd/topology/nodes/1/mem_banks/0/used_memory";
    std::filesystem::remove(fifo);
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    // Bounded: a probe that opened the FIFO would block; it is killed at the end of the test.
    test_support::RunningProcess r(probe_args({"--sysfs-root", (tree.root() / "m").string(), "--format", "targets"}));
    CHECK(r.wait_for_output("gfx1100", 20));
    CHECK(r.wait().exit_code == 0);
}

TEST_CASE("cli: links in a --sysfs-root tree resolve inside it, never on the host") {
    // A capture's absolute link points where the file was on the captured machine: inside the tree.
    TempTree tree;
    tree.copy(machine("rx7900xtx"), "m");
    const auto properties = tree.root() / "m/sys/class/kfd/kfd/topology/nodes/1/properties";
    std::filesystem::create_directories(tree.root() / "m/elsewhere");
    std::filesystem::rename(properties, tree.root() / "m/elsewhere/properties");
    std::filesystem::create_symlink("/elsewhere/properties", properties);
    const auto inside = run_process(probe_args({"--sysfs-root", (tree.root() / "m").string(), "--format", "targets"}));
    CHECK(inside.out == "gfx1100\n");

    // One that leads to a file of the host (here a planted copy saying gfx942) is not followed there.
    TempTree host;
    auto planted = test_support::read_file(tree.root() / "m/elsewhere/properties");
    planted.replace(planted.find("gfx_target_version 110000"), 25, "gfx_target_version 90402");
    host.write("properties", planted);
    std::filesystem::remove(properties);
    std::filesystem::create_symlink(host.root() / "properties", properties);
    const auto outside = run_process(probe_args({"--sysfs-root", (tree.root() / "m").string(), "--format", "targets"}));
    CHECK(outside.out.find("gfx942") == std::string::npos);

    // Where openat2 fails with ENOSYS (kernels before 5.6, sandboxes): links are followed, and what
    // ends up outside the tree is refused, the host's file included.
    auto argv = probe_args({"--sysfs-root", (tree.root() / "m").string(), "--format", "targets"});
    argv.insert(argv.begin(), OAR_WITHOUT_OPENAT2);
    const auto fallback = run_process(argv);
    CHECK(fallback.err.find("without_openat2:") == std::string::npos);
    CHECK(fallback.out.find("gfx942") == std::string::npos);
}

TEST_CASE("cli: without openat2 a --sysfs-root tree still reads, and a link out of it is not followed") {
    TempTree tree;
    tree.copy(machine("rx7900xtx"), "m");
    const auto root = (tree.root() / "m").string();
    auto argv = probe_args({"--sysfs-root", root, "--format", "targets"});
    argv.insert(argv.begin(), OAR_WITHOUT_OPENAT2);
    CHECK(run_process(argv).out == "gfx1100\n");

    // A relative link inside the tree is followed; one that climbs out of it to a planted file is not.
    const auto properties = tree.root() / "m/sys/class/kfd/kfd/topology/nodes/1/properties";
    std::filesystem::rename(properties, tree.root() / "m/sys/class/kfd/kfd/topology/nodes/1/properties.real");
    std::filesystem::create_symlink("properties.real", properties);
    CHECK(run_process(argv).out == "gfx1100\n");
    auto planted = test_support::read_file(tree.root() / "m/sys/class/kfd/kfd/topology/nodes/1/properties.real");
    planted.replace(planted.find("gfx_target_version 110000"), 25, "gfx_target_version 90402");
    tree.write("planted", planted);
    std::filesystem::remove(properties);
    std::filesystem::create_symlink("../../../../../../../../planted", properties);
    REQUIRE(std::filesystem::exists(properties));
    CHECK(run_process(argv).out.find("gfx942") == std::string::npos);
}

TEST_CASE("cli: usage errors exit 2 and name the problem") {
    const struct {
        std::vector<std::string> args;
        const char* expect;
    } rows[] = {
        {{probe_bin, "--format", "yaml"}, "unknown --format 'yaml'"},
        {{probe_bin, "--format"}, "--format needs a value"},
        {{probe_bin, "--frobnicate"}, "unknown argument '--frobnicate'"},
        {{probe_bin, "--sysfs-root", "/nonexistent/capture"}, "/nonexistent/capture: not a folder"},
        {{probe_bin, "--rocblas-dir", "/nonexistent/rocblas"}, "--rocblas-dir /nonexistent/rocblas: no such folder"},
        {{probe_bin, "--amdgpu-ids", "/nonexistent/ids"}, "--amdgpu-ids /nonexistent/ids: no such file"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.expect);
        const auto r = run_process(row.args);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(row.expect) != std::string::npos);
        CHECK(r.out.empty());
    }
}

TEST_CASE("cli: --help exits 0 and lists every format") {
    const auto r = run_process({probe_bin, "--help"});
    CHECK(r.exit_code == 0);
    for (const char* word : {"table", "json", "env", "targets", "--sysfs-root", "Exit status"})
        CHECK(r.out.find(word) != std::string::npos);
}

TEST_CASE("cli: --format targets prints the CMake list and nothing else") {
    const auto r =
        run_process(probe_args({"--sysfs-root", machine("laptop-780m-7600s").string(), "--format", "targets"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "gfx1102;gfx1103\n");
    TempTree empty;
    const auto none = run_process(probe_args({"--sysfs-root", empty.root().string(), "--format", "targets"}));
    CHECK(none.exit_code == 1);
    CHECK(none.out.empty());
    CHECK(none.err.find("no AMD GPU") != std::string::npos);
}

TEST_CASE("cli: --format env and --json") {
    const auto env =
        run_process(probe_args({"--sysfs-root", machine("laptop-780m-7600s").string(), "--format", "env"}));
    CHECK(env.exit_code == 0);
    CHECK(env.out.find("ROCR_VISIBLE_DEVICES=GPU-4a5b6c7d8e9fa0b1\n") != std::string::npos);
    const auto json = run_process(probe_args({"--sysfs-root", machine("mi300x-8gpu").string(), "--json"}));
    CHECK(json.exit_code == 0);
    const auto doc = nlohmann::json::parse(json.out);
    CHECK(doc["gpus"].size() == 8);
}

TEST_CASE("cli: a malformed HSA_OVERRIDE_GFX_VERSION is called out as the reason ROCm sees no GPU") {
    const auto r =
        run_process(probe_args({"--sysfs-root", machine("rx7900xtx").string()}), {"HSA_OVERRIDE_GFX_VERSION=11.0"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("HSA_OVERRIDE_GFX_VERSION='11.0' is malformed") != std::string::npos);
    CHECK(r.out.find("ROCm sees no GPU") != std::string::npos);
    const auto json = run_process(probe_args({"--sysfs-root", machine("rx7900xtx").string(), "--json"}),
                                  {"HSA_OVERRIDE_GFX_VERSION=11.0.0"});
    const auto doc = nlohmann::json::parse(json.out);
    REQUIRE(doc["environment"].size() == 1);
    CHECK(doc["environment"][0]["valid"] == true);
    CHECK(doc["environment"][0]["gfx_target"] == "gfx1100");
}

TEST_CASE("cli: only unreadable nodes and no GPU is exit 2, not a false 'no GPU'") {
    TempTree tree;
    tree.copy(fixtures() / "probe/bad/properties-garbage", "sys/class/kfd/kfd/topology/nodes/1/properties");
    const auto r = run_process(probe_args({"--sysfs-root", tree.root().string()}));
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("nodes/1/properties:1:") != std::string::npos);
    CHECK(r.err.find("could not be read") != std::string::npos);
}

TEST_CASE("cli: a node the container may not read (EPERM/EACCES) is skipped with a note") {
    TempTree tree;
    tree.copy(machine("rx7900xtx") / "sys", "sys");
    tree.copy(machine("rx6800xt") / "sys/class/kfd/kfd/topology/nodes/1", "sys/class/kfd/kfd/topology/nodes/2");
    std::filesystem::permissions(tree.topology() / "nodes/2/properties", std::filesystem::perms::none);
    // Root reads any file, so the probe runs as nobody, as ollama's service user would. The checkout
    // may sit in a folder nobody cannot enter, so the binary runs from the temporary tree.
    tree.copy(probe_bin, "rocm-probe");
    std::vector<std::string> args;
    if (::geteuid() == 0) args = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    const std::vector<std::string> probe = {(tree.root() / "rocm-probe").string(), "--sysfs-root", tree.root().string(),
                                            "--json"};
    args.insert(args.end(), probe.begin(), probe.end());
    const auto r = run_process(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    REQUIRE(doc["gpus"].size() == 1);
    CHECK(doc["gpus"][0]["kfd_node"] == 1);
    bool noted = false;
    for (const auto& n : doc["notes"])
        noted = noted || n.get<std::string>().find("node 2 skipped") != std::string::npos;
    CHECK(noted);
}

TEST_CASE("cli: on this machine (no AMD GPU on CI) the live probe answers cleanly") {
    if (std::filesystem::exists("/sys/class/kfd/kfd/topology/nodes")) {
        MESSAGE("this machine has KFD; the no-GPU answer is not checked here");
        return;
    }
    const auto r = run_process({probe_bin});
    CHECK(r.exit_code == 1);
    CHECK(line_count(r.out) == 1);
    CHECK(r.out.rfind("no AMD GPU: ", 0) == 0);
    // Debian's librocm-smi64 prints "Failed to open drm root directory" on stderr without a GPU.
    CHECK(r.err.empty());
    CHECK(r.out.find("Failed to open") == std::string::npos);
}

TEST_CASE("cli: rocm-smi joins by render minor and supplies memory and its noise never reaches the user") {
    TempTree tree;
    // minor 128 at 03:00.0 with 5 GiB used; a second device at minor 200 matches nothing.
    tree.write("devices.txt",
               "128 300 8c2a1b3d4e5f6071 25753026560 5368709120 33292120064 Navi 31 [Radeon RX 7900 XT/7900 XTX]\n"
               "200 9900 0 1 0 0 Phantom\n");
    const auto r = run_process(
        probe_args({"--sysfs-root", machine("rx7900xtx").string(), "--smi-library", OAR_FAKE_ROCM_SMI, "--json"}),
        {"FAKE_ROCM_SMI_DEVICES=" + (tree.root() / "devices.txt").string()});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("FAKE-RSMI-NOISE") == std::string::npos);
    const auto doc = nlohmann::json::parse(r.out);
    const auto& gpu = doc["gpus"][0];
    CHECK(gpu["memory_source"] == "rocm-smi");
    CHECK(gpu["vram_free_bytes"] == 25753026560ull - 5368709120ull);
    CHECK(gpu["marketing_name"] == "AMD Radeon RX 7900 XTX");  // amdgpu.ids with the revision wins
    CHECK(doc["sources"][0]["state"] == "used");
    bool noted = false;
    for (const auto& n : doc["notes"])
        noted = noted || n.get<std::string>().find("0000:99:00.0 matches no") != std::string::npos;
    CHECK(noted);
}

TEST_CASE("cli: rocm-smi without a render minor joins by PCI slot, and names the GPU when amdgpu.ids cannot") {
    TempTree tree;
    tree.write("devices.txt", "0 300 0 25753026560 1073741824 0 Navi 31 [Radeon RX 7900 XT/7900 XTX]\n");
    // The ollama#2411 excerpt has no DRM revision, so amdgpu.ids cannot choose among 0x744C's products.
    const auto text = test_support::read_file(capture("ollama-2411-rx7900xtx-plus-cpu/nodes-concatenated.EXCERPT.txt"));
    const auto split = text.find("cpu_cores_count", 1);
    tree.write("root/sys/class/kfd/kfd/topology/nodes/0/properties", text.substr(0, split));
    tree.write("root/sys/class/kfd/kfd/topology/nodes/1/properties", text.substr(split));
    const auto r = run_process(
        probe_args({"--sysfs-root", (tree.root() / "root").string(), "--smi-library", OAR_FAKE_ROCM_SMI, "--json"}),
        {"FAKE_ROCM_SMI_DEVICES=" + (tree.root() / "devices.txt").string()});
    REQUIRE(r.exit_code == 0);
    const auto gpu = nlohmann::json::parse(r.out)["gpus"][0];
    CHECK(gpu["marketing_name"] == "Navi 31 [Radeon RX 7900 XT/7900 XTX]");
    CHECK(gpu["name_source"] == "rocm-smi");
    CHECK(gpu["vram_total_bytes"] == 25753026560ull);
}

TEST_CASE("cli: a failing rocm-smi init is 'absent', silently") {
    TempTree tree;
    const auto r = run_process(probe_args({"--sysfs-root", tree.root().string(), "--smi-library", OAR_FAKE_ROCM_SMI}),
                               {"FAKE_ROCM_SMI_FAIL=1"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.empty());
    CHECK(r.out.find("FAKE-RSMI-NOISE") == std::string::npos);
    CHECK(r.out.find("rsmi_init failed (RSMI_STATUS_INIT_ERROR: fake init failure)") != std::string::npos);
}

TEST_CASE("cli: a library that is not rocm-smi is an error source, not a crash") {
    TempTree tree;
    const auto r =
        run_process(probe_args({"--sysfs-root", tree.root().string(), "--smi-library", "libc.so.6", "--verbose"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("missing an rsmi_* symbol") != std::string::npos);
}

TEST_CASE("cli: tools/capture-sysfs copies what the probe needs, and the capture replays the same") {
    TempTree tree;
    const auto capture_dir = tree.root() / "capture";
    const auto cap = run_process({"/bin/bash", std::string(OAR_TOOLS) + "/capture-sysfs", "--from",
                                  machine("laptop-780m-7600s").string(), capture_dir.string()});
    REQUIRE(cap.exit_code == 0);
    CHECK(cap.out.find("0 unreadable") != std::string::npos);
    const auto original =
        run_process(probe_args({"--sysfs-root", machine("laptop-780m-7600s").string(), "--json", "--rocblas-dir",
                                (machine("laptop-780m-7600s") / "opt/rocm/lib/rocblas/library").string()}));
    const auto replayed =
        run_process(probe_args({"--sysfs-root", capture_dir.string(), "--json", "--rocblas-dir",
                                (machine("laptop-780m-7600s") / "opt/rocm/lib/rocblas/library").string()}));
    REQUIRE(original.exit_code == 0);
    REQUIRE(replayed.exit_code == 0);
    CHECK(nlohmann::json::parse(original.out)["gpus"] == nlohmann::json::parse(replayed.out)["gpus"]);
    // A second capture into the same folder would mix machines: refused.
    const auto again = run_process({"/bin/bash", std::string(OAR_TOOLS) + "/capture-sysfs", capture_dir.string()});
    CHECK(again.exit_code == 2);
    CHECK(again.err.find("not empty") != std::string::npos);
}

// What ollama-airllm's ROCm build does for its prompts, tried the same way: the stand-in librocblas loads,
// a missing one says why, and a replayed tree does not try unless asked.
TEST_CASE("cli: --rocblas-library reports whether rocBLAS loads, with its version, or why not") {
    const auto tree = machine("rx7900xtx").string();
    const auto loads = run_process({probe_bin, "--sysfs-root", tree, "--json", "--rocblas-library", OAR_FAKE_ROCBLAS});
    REQUIRE(loads.exit_code == 0);
    const auto doc = nlohmann::json::parse(loads.out);
    CHECK(doc["rocblas_library"]["loads"] == true);
    CHECK(doc["rocblas_library"]["version"] == "9.9.9.stand-in");
    CHECK(doc["rocblas_library"]["problem"].is_null());
    CHECK(doc["gpus"][0]["wave_size"] == 32);

    const auto missing =
        run_process({probe_bin, "--sysfs-root", tree, "--json", "--rocblas-library", "/nonexistent/librocblas.so.5"});
    const auto none = nlohmann::json::parse(missing.out);
    CHECK(none["rocblas_library"]["loads"] == false);
    CHECK(none["rocblas_library"]["problem"].get<std::string>().find("/nonexistent/librocblas.so.5") !=
          std::string::npos);
    const auto table =
        run_process({probe_bin, "--sysfs-root", tree, "--rocblas-library", "/nonexistent/librocblas.so.5"});
    CHECK(table.out.find("rocBLAS does not load, so ollama-airllm runs prompts on its own kernels") !=
          std::string::npos);

    const auto replay = run_process({probe_bin, "--sysfs-root", tree, "--json"});
    CHECK(nlohmann::json::parse(replay.out)["rocblas_library"].is_null());
}
