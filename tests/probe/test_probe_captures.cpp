// The real KFD captures under tests/fixtures/kfd, replayed as they are (excerpts included).
#include <doctest/doctest.h>

#include "probe/service_plan.h"
#include "replay.h"
#include "support/temp_tree.h"

using namespace test_probe;
using test_support::TempTree;

TEST_CASE("Vega10 on a kernel without gfx_target_version: target from the PCI id table") {
    TempTree tree;
    tree.copy(capture("k8s-vega10-old-kernel"), "sys/class/kfd/kfd/topology");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    const auto& gpu = report.gpus[0];
    CHECK(gpu.gfx_target() == "gfx900");
    CHECK(gpu.gfx_source == probe::GfxSource::pci_id_table);
    CHECK(gpu.kfd_node == 1);
    CHECK(gpu.device_id == 0x6860);
    CHECK(gpu.pci_address->str() == "0000:19:00.0");  // location_id 6400 = 0x1900
    CHECK(gpu.vram_total == 17163091968ull);          // mem_banks heap_type 1
    CHECK(gpu.vram_used == 14102528ull);
    CHECK(gpu.memory_source == "kfd");
    CHECK(gpu.unique_id == 14073402507705256556ull);
    CHECK(gpu.compute_units == 64u);
    CHECK_FALSE(gpu.integrated);
    const auto pci = std::find_if(report.sources.begin(), report.sources.end(),
                                  [](const auto& s) { return s.name == "pci-id table"; });
    CHECK(pci->state == probe::SourceState::used);
}

TEST_CASE("MI210 on a two-socket host: GPU index counts GPU nodes only") {
    TempTree tree;
    tree.copy(capture("k8s-mi210"), "sys/class/kfd/kfd/topology");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    const auto& gpu = report.gpus[0];
    CHECK(gpu.index == 0);
    CHECK(gpu.kfd_node == 2);
    CHECK(gpu.gfx_target() == "gfx90a");
    CHECK(gpu.gfx_source == probe::GfxSource::kfd);
    CHECK(gpu.pci_address->str() == "0000:63:00.0");
    CHECK(gpu.marketing_name == "AMD Instinct MI210");  // 0x740F has one name in amdgpu.ids
    CHECK_FALSE(gpu.vram_total.has_value());            // capture has no mem_banks
    CHECK(gpu.compute_units == 104u);
}

TEST_CASE("MI308X CPX partition: 'ip discovery' name ignored, used_memory read") {
    TempTree tree;
    tree.copy(capture("k8s-mi308x-cpx"), "sys/class/kfd/kfd/topology");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    const auto& gpu = report.gpus[0];
    CHECK(gpu.gfx_target() == "gfx942");
    CHECK(gpu.marketing_name != "ip discovery");
    CHECK(gpu.vram_total == 51539607552ull);
    CHECK(gpu.vram_free() == 51539607552ull - 2907979776ull);
    CHECK(gpu.pci_address->str() == "0000:0a:00.0");
}

TEST_CASE("MI300X CPX: node 10 sorts after node 2, partitions share a target") {
    TempTree tree;
    tree.copy(capture("k8s-mi300x-cpx"), "sys/class/kfd/kfd/topology");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 2);
    CHECK(report.gpus[0].kfd_node == 2);
    CHECK(report.gpus[1].kfd_node == 10);
    CHECK(report.gpus[0].render_minor == 128);
    CHECK(report.gpus[1].render_minor == 136);
    // location_id 1280 (0x500) carries the partition in the low bits: bus 05, device 00.
    CHECK(report.gpus[0].pci_address->str() == "0000:05:00.0");
    CHECK(report.gpus[1].pci_address->str() == "0000:27:00.0");
    CHECK(probe::gpu_targets(report.gpus) == "gfx942");
}

TEST_CASE("MI300X partition memory: KFD's bank beats a whole-GPU DRM figure") {
    // ROCm/ROCm#4750 gives one partition's mem_bank; the node around it is node 2 of the MI300X CPX
    // capture, and the DRM file reports the whole GPU as rocm-smi does for every partition.
    TempTree tree;
    tree.copy(capture("k8s-mi300x-cpx/nodes/0"), "sys/class/kfd/kfd/topology/nodes/0");
    tree.copy(capture("k8s-mi300x-cpx/nodes/2"), "sys/class/kfd/kfd/topology/nodes/3");
    tree.copy(capture("rocm-4750-mi300x-cpx/nodes/3/mem_banks"), "sys/class/kfd/kfd/topology/nodes/3/mem_banks");
    tree.write("sys/class/drm/renderD128/device/vendor", "0x1002\n");
    tree.write("sys/class/drm/renderD128/device/device", "0x74a1\n");
    tree.write("sys/class/drm/renderD128/device/mem_info_vram_total", "206141652992\n");
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].vram_total == 25767706624ull);
    CHECK(report.gpus[0].memory_source == "kfd (partition)");
    CHECK(any_note_contains(report, "a partition"));
}

TEST_CASE("RX 7900 XTX excerpt from ollama#2411, split into its two nodes as captured") {
    const auto text = test_support::read_file(capture("ollama-2411-rx7900xtx-plus-cpu/nodes-concatenated.EXCERPT.txt"));
    const auto split = text.find("cpu_cores_count", 1);
    TempTree tree;
    tree.write("sys/class/kfd/kfd/topology/nodes/0/properties", text.substr(0, split));
    tree.write("sys/class/kfd/kfd/topology/nodes/1/properties", text.substr(split));
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    const auto& gpu = report.gpus[0];
    CHECK(gpu.gfx_target() == "gfx1100");
    CHECK(gpu.device_id == 0x744C);
    CHECK(gpu.compute_units == 96u);
    CHECK(gpu.pci_address->str() == "0000:03:00.0");
    CHECK_FALSE(gpu.unique_id.has_value());  // cut off before unique_id
    CHECK_FALSE(gpu.integrated);
    // Without DRM there is no revision, and 0x744C is four products: the chip name stands in.
    CHECK(gpu.marketing_name.find("Navi31") != std::string::npos);
}

TEST_CASE("Strix Halo excerpt from lemonade#419: an APU target without DRM is integrated") {
    TempTree tree;
    tree.write("sys/class/kfd/kfd/topology/nodes/1/properties",
               test_support::read_file(capture("lemonade-419-strixhalo-gfx1151/nodes/1/properties.EXCERPT.txt")));
    const auto report = replay(tree.root());
    REQUIRE(report.gpus.size() == 1);
    CHECK(report.gpus[0].gfx_target() == "gfx1151");
    CHECK(report.gpus[0].integrated);
    CHECK(report.gpus[0].integrated_basis.find("APU") != std::string::npos);
    // 0x1586 is an 8060S, 8050S or 8040S by revision, which only DRM shows: the chip name stands in.
    CHECK(report.gpus[0].marketing_name.find("Strix Halo") == 0);
    CHECK(report.gpus[0].name_source == "pci-id table");
}
