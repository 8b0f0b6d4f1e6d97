#include <doctest/doctest.h>

#include "pkg/template.h"

TEST_CASE("variables are substituted and their use recorded") {
    const pkg::Variables vars = {{"name", "ollama"}, {"port", "11434"}, {"unused", "x"}};
    const auto r = pkg::render_template("pkgname=@{name}\nlisten=127.0.0.1:@{port} @{name}\n", "t", vars);
    REQUIRE(r.ok());
    CHECK(r->text == "pkgname=ollama\nlisten=127.0.0.1:11434 ollama\n");
    CHECK(r->used == std::set<std::string>{"name", "port"});
}

TEST_CASE("only @{ is special: bash's ${...}, @ and { pass through") {
    const auto r = pkg::render_template("a=${pkgdir} b=@ c={x} d=user@host e=\"${_patches[@]}\"\n", "t", {});
    REQUIRE(r.ok());
    CHECK(r->text == "a=${pkgdir} b=@ c={x} d=user@host e=\"${_patches[@]}\"\n");
}

TEST_CASE("template errors name the file, line and column") {
    const pkg::Variables vars = {{"name", "ollama"}};
    const struct {
        const char* text;
        const char* expect;
    } rows[] = {
        {"x\n  @{nmae}\n", "t:2:3: unknown variable 'nmae'"},
        {"@{name\n}", "t:1:1: '@{' is not closed by '}' on the same line"},
        {"ab @{Name}", "t:1:4: '@{Name}' is not a variable name"},
        {"@{}", "t:1:1: '@{}' is not a variable name"},
        {"@{a b}", "is not a variable name"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        const auto r = pkg::render_template(row.text, "t", vars);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find(row.expect) != std::string::npos);
    }
}

TEST_CASE("all template errors are reported together") {
    const auto r = pkg::render_template("@{a}\n@{b}\n", "t", {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "t:1:1: unknown variable 'a'\nt:2:1: unknown variable 'b'");
}
