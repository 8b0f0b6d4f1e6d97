#include <doctest/doctest.h>

#include "probe/pci_ids.h"
#include "support/temp_tree.h"

TEST_CASE("PCI device ids map to gfx targets") {
    const struct {
        std::uint16_t id;
        const char* gfx;
        bool apu;
    } rows[] = {
        {0x6860, "gfx900", false},  {0x687F, "gfx900", false},  {0x66AF, "gfx906", false},  {0x740F, "gfx90a", false},
        {0x74A1, "gfx942", false},  {0x73BF, "gfx1030", false}, {0x73DF, "gfx1031", false}, {0x163F, "gfx1033", true},
        {0x744C, "gfx1100", false}, {0x747E, "gfx1101", false}, {0x7480, "gfx1102", false}, {0x15BF, "gfx1103", true},
        {0x1586, "gfx1151", true},  {0x7590, "gfx1200", false}, {0x7551, "gfx1201", false},
    };
    for (const auto& row : rows) {
        CAPTURE(row.id);
        const auto chip = probe::lookup_pci_chip(row.id);
        REQUIRE(chip.has_value());
        CHECK(probe::gfx_name(chip->gfx) == row.gfx);
        CHECK(chip->apu == row.apu);
        CHECK(probe::is_apu_target(chip->gfx) == row.apu);
    }
    CHECK_FALSE(probe::lookup_pci_chip(0x0000).has_value());
    CHECK_FALSE(probe::lookup_pci_chip(0x686F + 1).has_value());
}

TEST_CASE("amdgpu.ids names a chip by device and revision") {
    const auto text = test_support::read_file(std::string(OAR_FIXTURES) + "/amdgpu.ids");
    const auto ids = probe::AmdgpuIds::parse(text, "amdgpu.ids");
    REQUIRE(ids.ok());
    CHECK(ids->size() > 200);
    CHECK(ids->name(0x744C, 0xC8) == "AMD Radeon RX 7900 XTX");
    CHECK(ids->name(0x744C, 0xCC) == "AMD Radeon RX 7900 XT");
    CHECK_FALSE(ids->name(0x744C, 0x01).has_value());
    // Revisions disagree on the product, so no guess without one.
    CHECK_FALSE(ids->unique_name(0x744C).has_value());
    CHECK(ids->unique_name(0x740F) == "AMD Instinct MI210");
}

TEST_CASE("a broken amdgpu.ids names the file and line") {
    const auto bad = probe::AmdgpuIds::parse("1.0.0\n744C,\tC8,\tAMD Radeon RX 7900 XTX\nnot a row\n", "ids");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.rfind("ids:3:", 0) == 0);
    const auto bad_hex = probe::AmdgpuIds::parse("744G,\tC8,\tX\n", "ids");
    REQUIRE_FALSE(bad_hex.ok());
    CHECK(bad_hex.error().message.find("not hex") != std::string::npos);
}
