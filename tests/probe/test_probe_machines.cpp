// The machine trees of tests/fixtures/probe and variations built from them in temporary folders.
#include <doctest/doctest.h>

#include <filesystem>

#include "probe/service_plan.h"
#include "replay.h"
#include "support/temp_tree.h"

using namespace test_probe;
using test_support::TempTree;

namespace {

const std::string nodes = "sys/class/kfd/kfd/topology/nodes/";

std::string node_properties(const std::string& machine_name, int node) {
    return test_support::read_file(machine(machine_name) / (nodes + std::to_string(node) + "/properties"));
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("RX 7900 XTX with DRM, amdgpu.ids and rocBLAS: every field") {
    const auto report = replay(machine("rx7900xtx"));
    REQUIRE(report.gpus.size() == 1);
    const auto& gpu = report.gpus[0];
    CHECK(gpu.index == 0);
    CHECK(gpu.kfd_node == 1);
    CHECK(gpu.render_minor == 128);
    CHECK(gpu.gfx_target() == "gfx1100");
    CHECK(gpu.marketing_name == "AMD Radeon RX 7900 XTX");
    CHECK(gpu.name_source == "amdgpu.ids");
    CHECK(gpu.vendor_id == 0x1002);
    CHECK(gpu.device_id == 0x744C);
    CHECK(gpu.revision == 0xC8);
    CHECK(gpu.pci_address->str() == "0000:03:00.0");
    CHECK(gpu.vram_total == 25753026560ull);
    CHECK(gpu.vram_free() == 25753026560ull - 1153433600ull);
    CHECK(gpu.gtt_total == 33292120064ull);
    CHECK(gpu.memory_source == "drm");
    CHECK_FALSE(gpu.integrated);
    CHECK(gpu.uuid() == "GPU-8c2a1b3d4e5f6071");
    CHECK(gpu.compute_units == 96u);
    CHECK(gpu.rocblas_kernels == true);
    CHECK_FALSE(gpu.advice.run_as.has_value());
    CHECK(gpu.advice.runs);
    CHECK(report.notes.empty());
    CHECK(report.rocblas_dir.find("opt/rocm/lib/rocblas/library") != std::string::npos);
}

TEST_CASE("RX 6800 XT (gfx1030)") {
    const auto report = replay(machine("rx6800xt"));
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].gfx_target() == "gfx1030");
    CHECK(report.gpus[0].marketing_name == "AMD Radeon RX 6800 XT");
    CHECK(report.gpus[0].compute_units == 72u);
    CHECK(probe::service_env(report).size() == 1);  // the GPU's line, no assignment
}

TEST_CASE("laptop: iGPU at node 1 and renderD128, dGPU at node 2") {
    const auto report = replay(machine("laptop-780m-7600s"));
    REQUIRE(report.gpus.size() == 2);
    const auto& igpu = report.gpus[0];
    const auto& dgpu = report.gpus[1];
    CHECK(igpu.kfd_node == 1);
    CHECK(igpu.gfx_target() == "gfx1103");
    CHECK(igpu.integrated);
    CHECK(igpu.integrated_basis.find("carve-out") != std::string::npos);
    CHECK(igpu.marketing_name == "AMD Radeon 780M Graphics");
    CHECK_FALSE(igpu.unique_id.has_value());
    CHECK(dgpu.kfd_node == 2);
    CHECK(dgpu.gfx_target() == "gfx1102");
    CHECK_FALSE(dgpu.integrated);
    CHECK(dgpu.marketing_name == "AMD Radeon RX 7600S");
    CHECK(probe::gpu_targets(report.gpus) == "gfx1102;gfx1103");  // discrete first
}

TEST_CASE("Strix Halo alone: integrated, not hidden, no override with an unknown rocBLAS") {
    const auto report = replay(machine("strixhalo"));
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].integrated);
    CHECK_FALSE(report.gpus[0].rocblas_kernels.has_value());
    CHECK(probe::service_gpus(report.gpus).size() == 1);
    for (const auto& line : probe::service_env(report)) CHECK(line.key.empty());
}

TEST_CASE("eight MI300X: GPU order follows KFD nodes, one target") {
    const auto report = replay(machine("mi300x-8gpu"));
    REQUIRE(report.gpus.size() == 8);
    for (int i = 0; i < 8; ++i) {
        CAPTURE(i);
        CHECK(report.gpus[i].index == i);
        CHECK(report.gpus[i].kfd_node == i + 2);
        CHECK(report.gpus[i].render_minor == 128 + i);
        CHECK(report.gpus[i].gfx_target() == "gfx942");
        CHECK(report.gpus[i].marketing_name == "AMD Instinct MI300X");
        CHECK(report.gpus[i].compute_units == 304u);
    }
    CHECK(probe::gpu_targets(report.gpus) == "gfx942");
}

TEST_CASE("node folders sort numerically: 2, 9, 10") {
    TempTree tree;
    tree.copy(machine("rx6800xt") / (nodes + "0"), nodes + "0");
    tree.copy(machine("rx7900xtx") / (nodes + "1"), nodes + "10");
    tree.copy(machine("rx6800xt") / (nodes + "1"), nodes + "9");
    tree.copy(machine("laptop-780m-7600s") / (nodes + "2"), nodes + "2");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 3);
    CHECK(report.gpus[0].kfd_node == 2);
    CHECK(report.gpus[1].kfd_node == 9);
    CHECK(report.gpus[2].kfd_node == 10);
    CHECK(report.gpus[2].gfx_target() == "gfx1100");
}

TEST_CASE("a folder that is not a node number is noted and ignored") {
    TempTree tree;
    tree.copy(machine("rx7900xtx") / "sys", "sys");
    tree.write(nodes + "backup/properties", "garbage");
    const auto report = replay(tree.root());
    CHECK(report.gpus.size() == 1);
    CHECK(any_note_contains(report, "backup: not a numeric node folder"));
}

TEST_CASE("truncated and garbage nodes are skipped with the file and line, the good GPU stays") {
    for (const char* bad : {"properties-truncated", "properties-garbage", "properties-hex-value"}) {
        CAPTURE(bad);
        TempTree tree;
        tree.copy(machine("rx7900xtx") / "sys", "sys");
        tree.copy(fixtures() / "probe/bad" / bad, nodes + "2/properties");
        const auto report = replay(tree.root());
        REQUIRE(report.gpus.size() == 1);
        CHECK(report.gpus[0].kfd_node == 1);
        CHECK(report.input_error);
        CHECK(any_note_contains(report, "nodes/2/properties:"));
        CHECK(any_note_contains(report, "node 2 skipped"));
    }
}

TEST_CASE("a properties file without simd_count cannot be classified") {
    TempTree tree;
    tree.write(nodes + "1/properties", "gfx_target_version 110000\nvendor_id 4098\n");
    const auto report = replay(tree.root());
    CHECK(report.gpus.empty());
    CHECK(report.input_error);
    CHECK(any_note_contains(report, "no simd_count line"));
}

TEST_CASE("a masked or undecodable gfx_target_version falls back to the PCI id") {
    TempTree tree;
    tree.copy(machine("rx7900xtx") / "sys", "sys");
    tree.write(nodes + "1/properties",
               replace(node_properties("rx7900xtx", 1), "gfx_target_version 110000", "gfx_target_version 119999"));
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].gfx_target() == "gfx1100");
    CHECK(report.gpus[0].gfx_source == probe::GfxSource::pci_id_table);
    CHECK(any_note_contains(report, "119999"));
}

TEST_CASE("a GPU with an unknown device id and no gfx_target_version has an unknown target") {
    TempTree tree;
    auto props = replace(node_properties("rx6800xt", 1), "gfx_target_version 100300\n", "");
    props = replace(props, "device_id 29631", "device_id 1");
    tree.write(nodes + "1/properties", props);
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    CHECK_FALSE(report.gpus[0].gfx.has_value());
    CHECK(report.gpus[0].gfx_target() == "unknown");
    CHECK(probe::gpu_targets(report.gpus).empty());
    CHECK(any_note_contains(report, "0x0001 is not in the id table"));
}

TEST_CASE("without KFD, DRM render nodes and the PCI table still find the GPU") {
    TempTree tree;
    tree.copy(machine("rx7900xtx") / "sys/class/drm", "sys/class/drm");
    tree.write("sys/class/drm/renderD129/device/vendor", "0x8086\n");  // an Intel GPU beside it is ignored
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    const auto& gpu = report.gpus[0];
    CHECK_FALSE(gpu.kfd_node.has_value());
    CHECK(gpu.render_minor == 128);
    CHECK(gpu.gfx_target() == "gfx1100");
    CHECK(gpu.gfx_source == probe::GfxSource::pci_id_table);
    CHECK(gpu.marketing_name == "AMD Radeon RX 7900 XTX");
    CHECK(gpu.pci_address->str() == "0000:03:00.0");
}

TEST_CASE("the PCI address comes from the device link when uevent is missing") {
    TempTree tree;
    tree.copy(machine("rx7900xtx") / (nodes + "1"), nodes + "1");
    tree.write("sys/devices/pci0000:00/0000:00:01.1/0000:2d:00.0/vendor", "0x1002\n");
    tree.write("sys/devices/pci0000:00/0000:00:01.1/0000:2d:00.0/device", "0x744c\n");
    std::filesystem::create_directories(tree.root() / "sys/class/drm/renderD128");
    std::filesystem::create_directory_symlink("../../../devices/pci0000:00/0000:00:01.1/0000:2d:00.0",
                                              tree.root() / "sys/class/drm/renderD128/device");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].pci_address->str() == "0000:2d:00.0");
}

TEST_CASE("malformed DRM attributes are noted and KFD facts stand") {
    TempTree tree;
    tree.copy(machine("rx7900xtx") / "sys", "sys");
    tree.write("sys/class/drm/renderD128/device/mem_info_vram_total", "lots\n");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].vram_total == 25753026560ull);  // from the KFD bank
    CHECK(report.gpus[0].memory_source == "kfd");
    CHECK(any_note_contains(report, "mem_info_vram_total: expected one number, found 'lots?'"));
}

TEST_CASE("an empty root has no GPU and says what was looked at") {
    TempTree tree;
    const auto report = replay(tree.root());
    CHECK(report.gpus.empty());
    CHECK_FALSE(report.input_error);
    CHECK(report.none_found_reason.rfind("no AMD GPU: ", 0) == 0);
    CHECK(report.none_found_reason.find("sys/class/kfd/kfd/topology does not exist") != std::string::npos);
    CHECK(report.none_found_reason.find("no renderD* device") != std::string::npos);
}

TEST_CASE("a KFD with only CPU nodes (amdgpu without a GPU) reports no GPU") {
    TempTree tree;
    tree.copy(capture("k8s-mi210/nodes/0"), nodes + "0");
    const auto report = replay(tree.root());
    CHECK(report.gpus.empty());
    CHECK(report.none_found_reason.find("1 CPU node(s) and no usable GPU node") != std::string::npos);
}
