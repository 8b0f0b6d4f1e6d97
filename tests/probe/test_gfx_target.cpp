#include <doctest/doctest.h>

#include "probe/gfx_target.h"

using probe::GfxVersion;

TEST_CASE("gfx_target_version decodes to the name LLVM targets") {
    // Values from the kernel's kgd2kfd_probe table (shared reference gpu-detection.md §2).
    const struct {
        std::uint64_t kfd;
        const char* name;
    } rows[] = {
        {70000, "gfx700"},   {80003, "gfx803"},   {90000, "gfx900"},   {90006, "gfx906"},   {90008, "gfx908"},
        {90010, "gfx90a"},   {90012, "gfx90c"},   {90402, "gfx942"},   {90500, "gfx950"},   {100100, "gfx1010"},
        {100300, "gfx1030"}, {100302, "gfx1032"}, {100306, "gfx1036"}, {110000, "gfx1100"}, {110001, "gfx1101"},
        {110002, "gfx1102"}, {110003, "gfx1103"}, {110500, "gfx1150"}, {110501, "gfx1151"}, {120000, "gfx1200"},
        {120001, "gfx1201"}, {120500, "gfx1250"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.kfd);
        const auto v = probe::decode_kfd_gfx_version(row.kfd);
        REQUIRE(v.ok());
        CHECK(probe::gfx_name(*v) == row.name);
        // The name parses back to the same version.
        const auto back = probe::parse_gfx_name(row.name);
        REQUIRE(back.ok());
        CHECK(*back == *v);
    }
}

TEST_CASE("gfx_target_version values that name no ISA are errors") {
    CHECK_FALSE(probe::decode_kfd_gfx_version(0).ok());
    CHECK_FALSE(probe::decode_kfd_gfx_version(101600).ok());  // minor 16 needs two hex digits
    CHECK_FALSE(probe::decode_kfd_gfx_version(110099).ok());  // stepping 99
    const auto err = probe::decode_kfd_gfx_version(110099);
    CHECK(err.error().message.find("110099") != std::string::npos);
}

TEST_CASE("gfx names that are not targets are rejected") {
    for (const char* bad : {"", "gfx", "gfx1", "gfx11", "GFX1100", "gfx11g0", "gfx1100x", "sm_90", "gfx0000"}) {
        CAPTURE(bad);
        CHECK_FALSE(probe::parse_gfx_name(bad).ok());
    }
}

TEST_CASE("HSA_OVERRIDE_GFX_VERSION is parsed as strictly as libhsakmt does") {
    const struct {
        const char* text;
        bool ok;
        GfxVersion v;
    } rows[] = {
        {"11.0.0", true, {11, 0, 0}},
        {"10.3.0", true, {10, 3, 0}},
        {"9.0.10", true, {9, 0, 10}},
        {"63.255.255", true, {63, 255, 255}},
        {"11.0", false, {}},
        {"11", false, {}},
        {"11.0.0.0", false, {}},
        {"11.0.0 ", false, {}},
        {" 11.0.0", false, {}},
        {"gfx1100", false, {}},
        {"11.0.x", false, {}},
        {"64.0.0", false, {}},
        {"11.256.0", false, {}},
        {"11..0", false, {}},
        {"-1.0.0", false, {}},
        {"", false, {}},
        {"99999999999999999999.0.0", false, {}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        const auto parsed = probe::parse_override(row.text);
        REQUIRE(parsed.ok() == row.ok);
        if (row.ok) {
            CHECK(*parsed == row.v);
            CHECK(probe::override_string(*parsed) == row.text);
        } else {
            // The message quotes the value and shows the expected form.
            CHECK(parsed.error().message.find(std::string("'") + row.text + "'") != std::string::npos);
            CHECK(parsed.error().message.find("M.m.s") != std::string::npos);
        }
    }
}
