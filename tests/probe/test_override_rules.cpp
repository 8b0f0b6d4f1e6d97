#include <doctest/doctest.h>

#include <set>

#include "probe/override_rules.h"

namespace {

probe::GfxVersion gfx(const char* name) { return *probe::parse_gfx_name(name); }

}  // namespace

TEST_CASE("override advice when the installed rocBLAS is known") {
    const std::set<std::string> arch_rocblas = {"gfx908",  "gfx90a",  "gfx942", "gfx1030",
                                                "gfx1100", "gfx1101", "gfx1102"};
    const std::set<std::string> only_1100 = {"gfx1100"};
    const struct {
        const char* physical;
        const std::set<std::string>* kernels;
        const char* run_as;  // nullptr: no override
        bool runs;
    } rows[] = {
        {"gfx1100", &arch_rocblas, nullptr, true},   // RX 7900 XTX: native
        {"gfx1030", &arch_rocblas, nullptr, true},   // RX 6800 XT: native
        {"gfx1031", &arch_rocblas, "10.3.0", true},  // RX 6700 XT runs gfx1030 code
        {"gfx1032", &arch_rocblas, "10.3.0", true}, {"gfx1034", &arch_rocblas, "10.3.0", true},
        {"gfx1036", &arch_rocblas, "10.3.0", true}, {"gfx1102", &arch_rocblas, nullptr, true},  // built: no override
        {"gfx1102", &only_1100, "11.0.0", true},  // not built: runs as gfx1100
        {"gfx1101", &only_1100, "11.0.0", true},    {"gfx1103", &arch_rocblas, "11.0.0", true},  // 780M
        {"gfx1031", &only_1100, nullptr, false},                                                 // gfx1030 missing too
        {"gfx1152", &arch_rocblas, nullptr, false},  // no authoritative rule
        {"gfx90c", &arch_rocblas, nullptr, false},   // gfx900 not in this rocBLAS
    };
    for (const auto& row : rows) {
        CAPTURE(row.physical);
        const auto advice = probe::advise_override(gfx(row.physical), *row.kernels);
        CHECK(advice.runs == row.runs);
        if (row.run_as) {
            REQUIRE(advice.run_as.has_value());
            CHECK(probe::override_string(*advice.run_as) == row.run_as);
            CHECK(advice.rule.find("installed rocBLAS") != std::string::npos);
        } else {
            CHECK_FALSE(advice.run_as.has_value());
        }
        CHECK_FALSE(advice.rule.empty());
    }
}

TEST_CASE("override advice falls back to Ollama's ROCm target list when rocBLAS is not visible") {
    const std::optional<std::set<std::string>> unknown;
    CHECK_FALSE(probe::advise_override(gfx("gfx1100"), unknown).run_as.has_value());
    CHECK_FALSE(probe::advise_override(gfx("gfx1151"), unknown).run_as.has_value());
    CHECK_FALSE(probe::advise_override(gfx("gfx1201"), unknown).run_as.has_value());
    const auto igpu = probe::advise_override(gfx("gfx1103"), unknown);
    REQUIRE(igpu.run_as.has_value());
    CHECK(probe::override_string(*igpu.run_as) == "11.0.0");
    CHECK(igpu.rule.find("rocBLAS not found") != std::string::npos);
    CHECK(probe::override_string(*probe::advise_override(gfx("gfx1035"), unknown).run_as) == "10.3.0");
    CHECK_FALSE(probe::advise_override(gfx("gfx900"), unknown).runs);
}

TEST_CASE("every rule maps to a different, natively supported target") {
    for (const char* name : {"gfx1031", "gfx1032", "gfx1033", "gfx1034", "gfx1035", "gfx1036", "gfx1101", "gfx1102",
                             "gfx1103", "gfx90c"}) {
        CAPTURE(name);
        const auto rule = probe::find_override_rule(gfx(name));
        REQUIRE(rule.has_value());
        CHECK_FALSE(rule->run_as == rule->physical);
        CHECK_FALSE(probe::find_override_rule(rule->run_as).has_value());
    }
    CHECK_FALSE(probe::find_override_rule(gfx("gfx1100")).has_value());
}
