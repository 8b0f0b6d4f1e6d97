#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "probe/render.h"
#include "replay.h"

using namespace test_probe;
using nlohmann::json;

TEST_CASE("JSON follows the documented schema") {
    const auto doc = json::parse(probe::render_json(replay(machine("laptop-780m-7600s"))));
    CHECK(doc["schema_version"] == 1);
    REQUIRE(doc["gpus"].size() == 2);
    const auto& igpu = doc["gpus"][0];
    CHECK(igpu["index"] == 0);
    CHECK(igpu["kfd_node"] == 1);
    CHECK(igpu["render_minor"] == 128);
    CHECK(igpu["gfx_target"] == "gfx1103");
    CHECK(igpu["gfx_target_source"] == "kfd");
    CHECK(igpu["marketing_name"] == "AMD Radeon 780M Graphics");
    CHECK(igpu["pci"]["vendor_id"] == "0x1002");
    CHECK(igpu["pci"]["device_id"] == "0x15bf");
    CHECK(igpu["pci"]["revision"] == "0x00c4");
    CHECK(igpu["pci"]["address"] == "0000:c4:00.0");
    CHECK(igpu["vram_total_bytes"] == 512ull << 20);
    CHECK(igpu["vram_free_bytes"] == (512ull - 180ull) << 20);
    CHECK(igpu["integrated"] == true);
    CHECK(igpu["unique_id"].is_null());
    CHECK(igpu["rocblas_kernels"] == false);
    CHECK(igpu["hsa_override"]["needed"] == true);
    CHECK(igpu["hsa_override"]["value"] == "11.0.0");
    const auto& dgpu = doc["gpus"][1];
    CHECK(dgpu["unique_id"] == "GPU-4a5b6c7d8e9fa0b1");
    CHECK(dgpu["hsa_override"]["needed"] == false);
    CHECK(dgpu["hsa_override"]["value"].is_null());
    CHECK(doc["gpu_targets"] == "gfx1102;gfx1103");
    REQUIRE(doc["service_env"].size() == 1);
    CHECK(doc["service_env"][0]["variable"] == "ROCR_VISIBLE_DEVICES");
    CHECK(doc["none_found_reason"].is_null());
    CHECK(doc["sources"].size() == 7);
    CHECK(doc["sources"][6]["name"] == "rocblas library");
    CHECK(doc["sources"][6]["state"] == "skipped");  // a replayed tree is not this machine
    CHECK(doc["rocblas_library"].is_null());
    CHECK(igpu["wave_size"] == 32);
    for (const auto& s : doc["sources"]) {
        CHECK(s.contains("name"));
        CHECK(s.contains("state"));
        CHECK(s.contains("detail"));
    }
}

TEST_CASE("JSON without a GPU still parses and says why") {
    const auto doc = json::parse(probe::render_json(replay(fixtures() / "kfd")));  // no sys/ below it
    CHECK(doc["gpus"].empty());
    CHECK(doc["gpu_targets"] == "");
    CHECK(doc["none_found_reason"].get<std::string>().rfind("no AMD GPU", 0) == 0);
}

TEST_CASE("the table shows each GPU on one row with units") {
    const auto table = probe::render_table(replay(machine("rx7900xtx")), false);
    CHECK(table.rfind("1 AMD GPU\n", 0) == 0);
    CHECK(table.find("gfx1100") != std::string::npos);
    CHECK(table.find("AMD Radeon RX 7900 XTX") != std::string::npos);
    CHECK(table.find("24.0 GiB") != std::string::npos);
    CHECK(table.find("1002:744c") != std::string::npos);
    CHECK(table.find("0000:03:00.0") != std::string::npos);
    CHECK(table.find("CMAKE_HIP_ARCHITECTURES=gfx1100") != std::string::npos);
    CHECK(table.find("(nothing to set)") != std::string::npos);
    CHECK(table.find("sources:") == std::string::npos);
    const auto verbose = probe::render_table(replay(machine("rx7900xtx")), true);
    CHECK(verbose.find("sources:") != std::string::npos);
    CHECK(verbose.find("uuid GPU-8c2a1b3d4e5f6071") != std::string::npos);
}

TEST_CASE("the table marks targets that came from the PCI id table") {
    auto report = replay(machine("rx7900xtx"));
    report.gpus[0].gfx_source = probe::GfxSource::pci_id_table;
    const auto table = probe::render_table(report, false);
    CHECK(table.find("gfx1100*") != std::string::npos);
    CHECK(table.find("no gfx_target_version") != std::string::npos);
}

TEST_CASE("env output is shell-sourceable lines and comments only") {
    const auto env = probe::render_env(replay(machine("laptop-780m-7600s")));
    std::size_t start = 0;
    while (start < env.size()) {
        const auto end = env.find('\n', start);
        const auto line = env.substr(start, end - start);
        CAPTURE(line);
        const bool comment = line.rfind("# ", 0) == 0;
        const bool assignment = line.find('=') != std::string::npos && line.find(' ') == std::string::npos;
        CHECK((comment || assignment));
        start = end + 1;
    }
    CHECK(env.find("\nROCR_VISIBLE_DEVICES=GPU-4a5b6c7d8e9fa0b1\n") != std::string::npos);
}

TEST_CASE("byte sizes read as a user expects") {
    CHECK(probe::format_bytes(512ull << 20) == "512 MiB");
    CHECK(probe::format_bytes(25753026560ull) == "24.0 GiB");
    CHECK(probe::format_bytes(0) == "0 MiB");
}
