#include <doctest/doctest.h>

#include "probe/properties.h"
#include "support/temp_tree.h"

using probe::parse_attribute;
using probe::parse_properties;

TEST_CASE("KFD properties parse into exact keys") {
    const auto props = parse_properties("capability 671588992\ncapability2 0\nsimd_count 192\n", "p");
    REQUIRE(props.ok());
    CHECK(props->get("capability") == 671588992u);
    CHECK(props->get("capability2") == 0u);
    CHECK(props->get("simd_count") == 192u);
    CHECK_FALSE(props->get("capabilit").has_value());
    CHECK(props->size() == 3);
}

TEST_CASE("the largest 64-bit values (unique_id, hive_id) survive") {
    const auto props = parse_properties("unique_id 18446744073709551615\nhive_id 15188982192727901047", "p");
    REQUIRE(props.ok());
    CHECK(props->get("unique_id") == 18446744073709551615ull);
    CHECK(props->get("hive_id") == 15188982192727901047ull);
}

TEST_CASE("malformed properties name the file, the line and what was found") {
    const struct {
        const char* text;
        const char* expect;
    } rows[] = {
        {"", "empty file"},
        {"simd_count 192\ngfx_target_", "p:2: expected 'key value'"},
        {"simd_count 192\nvendor_id 0x1002\n", "p:2: value of 'vendor_id' is not an unsigned decimal number"},
        {"simd_count\n", "p:1: expected 'key value'"},
        {"simd_count -1\n", "not an unsigned decimal"},
        {"simd_count 99999999999999999999999\n", "not an unsigned decimal"},
        {"Simd_Count 1\n", "key has characters"},
        {"simd_count 1\nsimd_count 2\n", "p:2: key 'simd_count' appears twice"},
        {"simd_count 1\n\nvendor_id 4098\n", "p:2: expected 'key value'"},
        {"simd_count  192\n", "not an unsigned decimal"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        const auto props = parse_properties(row.text, "p");
        REQUIRE_FALSE(props.ok());
        CHECK(props.error().message.find(row.expect) != std::string::npos);
    }
}

TEST_CASE("the committed bad files are rejected") {
    for (const char* name : {"properties-truncated", "properties-garbage", "properties-hex-value"}) {
        CAPTURE(name);
        const auto text = test_support::read_file(std::string(OAR_FIXTURES) + "/probe/bad/" + name);
        const auto props = parse_properties(text, name);
        REQUIRE_FALSE(props.ok());
        CHECK(props.error().message.rfind(name, 0) == 0);
    }
}

TEST_CASE("DRM attributes: decimal, 0x-hex, one trailing newline") {
    CHECK(*parse_attribute("0x1002\n", "f") == 0x1002u);
    CHECK(*parse_attribute("0x744c\n", "f") == 0x744cu);
    CHECK(*parse_attribute("25753026560\n", "f") == 25753026560ull);
    CHECK(*parse_attribute("7", "f") == 7u);
    for (const char* bad : {"", "\n", "0x", "12 MB\n", "1\n\n", "zz", "-5"}) {
        CAPTURE(bad);
        const auto v = parse_attribute(bad, "vendor");
        REQUIRE_FALSE(v.ok());
        CHECK(v.error().message.rfind("vendor: expected one number", 0) == 0);
    }
}
