// Ollama's `format` as a grammar: "json" and JSON Schemas, each checked on documents it must take whole and
// on documents it must refuse, and on schemas it must refuse with the keyword and where it is.
#include <doctest/doctest.h>

#include <string>

#include "runner/completion/json_schema_grammar.h"

using nlohmann::ordered_json;

namespace {

runner::grammar::Grammar grammar_of(const std::string& format) {
    auto g = runner::format_grammar(ordered_json::parse(format));
    REQUIRE_MESSAGE(g.ok(), (g.ok() ? "" : g.error().message));
    REQUIRE(g->has_value());
    return std::move(**g);
}

// The whole text is a sentence of the grammar.
bool takes(const runner::grammar::Grammar& g, const std::string& text) {
    runner::grammar::Matcher m(g);
    return m.accept(text) && m.complete();
}

std::string error_of(const std::string& format) {
    auto g = runner::format_grammar(ordered_json::parse(format));
    REQUIRE_FALSE(g.ok());
    return g.error().message;
}

}  // namespace

TEST_CASE("format json: any JSON object, as Ollama's grammar for llama-server, with bounded blanks and digits") {
    const auto g = grammar_of(R"("json")");
    CHECK(takes(g, "{}"));
    CHECK(takes(g, R"({"a": [1, -2.5e3, true, false, null, "x\"y\u00e9 é"], "b": {"c": {}}})"));
    CHECK(takes(g, "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}"));
    CHECK(takes(g, "{\"a\":\n" + std::string(20, ' ') + "1}"));
    CHECK_FALSE(takes(g, "{\"a\":\n" + std::string(21, ' ') + "1}"));
    CHECK(takes(g, "{\"a\": " + std::string(16, '9') + "}"));
    CHECK_FALSE(takes(g, "{\"a\": " + std::string(17, '9') + "}"));
    CHECK_FALSE(takes(g, "[1]"));  // an object, as Ollama asks for
    CHECK_FALSE(takes(g, " {}"));
    CHECK_FALSE(takes(g, "{  \"a\": 1}"));
    CHECK_FALSE(takes(g, R"({"a": 01})"));
    CHECK_FALSE(takes(g, R"({"a" 1})"));
    CHECK_FALSE(takes(g, R"({"a": 1,})"));
    CHECK_FALSE(takes(g, "{\"a\": \"\x01\"}"));
    CHECK_FALSE(takes(g, "{\"a\": \"\xff\"}"));  // not UTF-8
    CHECK_FALSE(takes(g, R"({"a": "\x"})"));
    CHECK_FALSE(takes(g, R"({"a": tru})"));
    CHECK_FALSE(takes(g, "{}}"));
}

TEST_CASE("format schema: properties in the schema's order, required ones always, no others") {
    const auto g = grammar_of(R"({"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
                                  "required": ["b", "a"]})");
    CHECK(takes(g, R"({"b": 1, "a": "x"})"));
    CHECK(takes(g, "{\n  \"b\": -7,\n  \"a\": \"\"\n}"));
    CHECK_FALSE(takes(g, R"({"a": "x", "b": 1})"));
    CHECK_FALSE(takes(g, R"({"b": 1})"));
    CHECK_FALSE(takes(g, R"({"b": 1.5, "a": "x"})"));
    CHECK_FALSE(takes(g, R"({"b": 1, "a": "x", "c": 2})"));
    CHECK_FALSE(takes(g, R"({"b": 1, "a": 2})"));
}

TEST_CASE("format schema: optional properties may be left out, in order, with commas only between") {
    const auto g = grammar_of(R"({"properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                                                  "c": {"type": "integer"}}, "required": ["b"]})");
    for (const char* ok : {R"({"b": 1})", R"({"a": 1, "b": 2})", R"({"b": 2, "c": 3})", R"({"a": 1, "b": 2, "c": 3})"})
        CHECK_MESSAGE(takes(g, ok), ok);
    for (const char* bad : {"{}", R"({"a": 1})", R"({"a": 1, "c": 3})", R"({, "b": 1})", R"({"b": 1,})"})
        CHECK_MESSAGE(!takes(g, bad), bad);
    const auto none_required = grammar_of(R"({"type": "object", "properties": {"a": {}, "b": {}}})");
    CHECK(takes(none_required, "{}"));
    CHECK(takes(none_required, R"({"b": [1, {"x": null}]})"));
    CHECK_FALSE(takes(none_required, R"({"b": 1, "a": 2})"));
}

TEST_CASE("format schema: enum, const, anyOf, several types and pydantic's Optional") {
    const auto colour = grammar_of(R"({"enum": ["red", "green", 3, null]})");
    CHECK(takes(colour, R"("red")"));
    CHECK(takes(colour, "3"));
    CHECK(takes(colour, "null"));
    CHECK_FALSE(takes(colour, R"("blue")"));
    CHECK(takes(grammar_of(R"({"const": {"k": [1, 2]}})"), R"({"k":[1,2]})"));
    const auto nullable = grammar_of(R"({"type": ["string", "null"]})");
    CHECK(takes(nullable, R"("x")"));
    CHECK(takes(nullable, "null"));
    CHECK_FALSE(takes(nullable, "1"));
    const auto optional =
        grammar_of(R"({"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null, "title": "Age"})");
    CHECK(takes(optional, "42"));
    CHECK(takes(optional, "null"));
    CHECK_FALSE(takes(optional, "4.2"));
    CHECK(takes(grammar_of(R"({"allOf": [{"type": "boolean"}]})"), "false"));
}

TEST_CASE("format schema: array and string lengths, counted in items and characters") {
    const auto flags = grammar_of(R"({"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2})");
    CHECK(takes(flags, "[true]"));
    CHECK(takes(flags, "[true, false]"));
    CHECK_FALSE(takes(flags, "[]"));
    CHECK_FALSE(takes(flags, "[true, true, true]"));
    CHECK_FALSE(takes(flags, "[1]"));
    const auto code = grammar_of(R"({"type": "string", "minLength": 2, "maxLength": 3})");
    CHECK(takes(code, R"("ab")"));
    CHECK(takes(code, R"("abc")"));
    CHECK(takes(code, R"("éa")"));        // two characters, three bytes
    CHECK(takes(code, R"("\n\u00e9")"));  // escapes are one character each
    CHECK_FALSE(takes(code, R"("a")"));
    CHECK_FALSE(takes(code, R"("abcd")"));
    CHECK(takes(grammar_of(R"({"type": "array", "maxItems": 0})"), "[]"));
    CHECK(takes(grammar_of(R"({"type": "object", "additionalProperties": false})"), "{}"));
    const auto counts = grammar_of(R"({"type": "object", "additionalProperties": {"type": "integer"}})");
    CHECK(takes(counts, R"({"x": 1, "y": 2})"));
    CHECK_FALSE(takes(counts, R"({"x": "1"})"));
}

TEST_CASE("format schema: $ref into $defs, recursion, and pydantic's nested models") {
    const auto tree = grammar_of(R"({"$defs": {"Node": {"type": "object", "properties": {
        "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
        "required": ["v", "kids"]}}, "$ref": "#/$defs/Node"})");
    CHECK(takes(tree, R"({"v": 1, "kids": [{"v": 2, "kids": []}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]})"));
    CHECK_FALSE(takes(tree, R"({"v": 1, "kids": [{"v": 2}]})"));
    const auto pet = grammar_of(R"({"$defs": {"Pet": {"properties": {"name": {"title": "Name", "type": "string"}},
        "required": ["name"], "title": "Pet", "type": "object"}}, "properties": {"pets": {"items": {"$ref":
        "#/$defs/Pet"}, "title": "Pets", "type": "array"}}, "required": ["pets"], "title": "Owner", "type": "object"})");
    CHECK(takes(pet, R"({"pets": [{"name": "Rex"}, {"name": "Tom"}]})"));
    CHECK_FALSE(takes(pet, R"({"pets": [{"name": 1}]})"));
}

TEST_CASE("format: what it cannot enforce is an error naming the keyword and where, never a looser grammar") {
    CHECK(error_of(R"({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}})") ==
          "format: /properties/x/pattern: JSON Schema keyword \"pattern\" is not supported");
    CHECK(error_of(R"({"type": "tuple"})") == "format: /type: unknown type \"tuple\"");
    CHECK(error_of(R"({"$ref": "#/$defs/Missing"})").find("points at nothing") != std::string::npos);
    CHECK(error_of(R"({"$ref": "https://example.com/s.json"})").find("same schema") != std::string::npos);
    CHECK(error_of("5") == "format: 5 is neither \"json\" nor a JSON Schema object");
    CHECK(error_of(R"("yaml")").find("neither") != std::string::npos);
    CHECK(error_of(R"({"properties": {"a": false}})") == "format: /properties/a: the schema false admits no value");
    CHECK(error_of(R"({"properties": {"a": {}}, "additionalProperties": true})").find("only false") !=
          std::string::npos);
    CHECK(error_of(R"({"properties": {"a": {}}, "required": ["b"]})").find("\"b\" is not one of the properties") !=
          std::string::npos);
    CHECK(error_of(R"({"type": "array", "minItems": -1})") == "format: /minItems: must be a non-negative integer");
    CHECK(error_of(R"({"type": "string", "maxLength": 100000})") ==
          "format: /maxLength: 100000 is more than the 10000 a format enforces");
    CHECK(error_of(R"({"type": "array", "minItems": 3, "maxItems": 1})") ==
          "format: /: minItems 3 is more than maxItems 1");
    CHECK(error_of(R"({"allOf": [{}, {}]})").find("one schema") != std::string::npos);
    CHECK(error_of(R"({"enum": []})").find("non-empty") != std::string::npos);
    for (const char* loop :
         {R"({"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"})",
          R"({"anyOf": [{"type": "null"}, {"$ref": "#"}]})",
          R"({"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/B"}]}, "B": {"allOf": [{"$ref": "#/$defs/A"}]}},
                                 "$ref": "#/$defs/B"})"})
        CHECK_MESSAGE(error_of(loop).find("leads back") != std::string::npos, loop);
}

TEST_CASE("format schema: only required names, with any value") {
    const auto g = grammar_of(R"({"type": "object", "required": ["a", "b"]})");
    CHECK(takes(g, R"({"a": 1, "b": [true]})"));
    CHECK_FALSE(takes(g, "{}"));
    CHECK_FALSE(takes(g, R"({"a": 1})"));
}

TEST_CASE("format: a schema cannot make the grammar, the stack or the matcher grow without bound") {
    // A chain of $refs deeper than the limit: an error, not a stack overflow while the request is read.
    ordered_json chain = {{"$defs", ordered_json::object()}, {"$ref", "#/$defs/A0"}};
    for (int i = 0; i < 2000; ++i)
        chain["$defs"]["A" + std::to_string(i)] = {{"$ref", "#/$defs/A" + std::to_string(i + 1)}};
    chain["$defs"]["A2000"] = {{"type", "string"}};
    auto deep = runner::format_grammar(chain);
    REQUIRE_FALSE(deep.ok());
    CHECK(deep.error().message.find("nest more than 256 levels") != std::string::npos);
    // Many optional properties: a grammar linear in them, and past 1000 an error.
    ordered_json wide = {{"type", "object"}, {"properties", ordered_json::object()}};
    for (int i = 0; i < 1000; ++i) wide["properties"]["p" + std::to_string(i)] = {{"type", "null"}};
    auto g = runner::format_grammar(wide);
    REQUIRE(g.ok());
    CHECK(takes(**g, R"({"p3": null, "p999": null})"));
    CHECK_FALSE(takes(**g, R"({"p999": null, "p3": null})"));
    wide["properties"]["one_more"] = {{"type", "null"}};
    CHECK(runner::format_grammar(wide).error().message.find("more than 1000 properties") != std::string::npos);
    // Lengths that would spell out millions of symbols.
    ordered_json lengths = {{"type", "object"}, {"properties", ordered_json::object()}};
    for (int i = 0; i < 200; ++i)
        lengths["properties"]["s" + std::to_string(i)] = {{"type", "string"}, {"maxLength", 10000}};
    CHECK(runner::format_grammar(lengths).error().message.find("spell out more than") != std::string::npos);
}

TEST_CASE("format: alternatives that multiply with nesting are an error, not a matcher that runs out of memory") {
    ordered_json twins = {{"$defs", ordered_json::object()}, {"$ref", "#/$defs/A0"}};
    for (int i = 0; i < 20; ++i) {
        const ordered_json next = {{"$ref", "#/$defs/A" + std::to_string(i + 1)}};
        twins["$defs"]["A" + std::to_string(i)] = {{"anyOf", {next, next}}};
    }
    twins["$defs"]["A20"] = {{"type", "string"}};
    auto g = runner::format_grammar(twins);
    REQUIRE(g.ok());
    CHECK_THROWS_AS(runner::grammar::Matcher{**g}, runner::grammar::AmbiguityError);
}

TEST_CASE("format: a long string or list meets the same few states, whatever its length") {
    const auto g = grammar_of(R"("json")");
    runner::grammar::Matcher m(g);
    REQUIRE(m.accept(R"({"s": ")"));
    for (int i = 0; i < 200; ++i) REQUIRE(m.accept("some text "));
    const auto after_200 = m.states();
    for (int i = 0; i < 2000; ++i) REQUIRE(m.accept("some text "));
    CHECK(m.states() == after_200);
    REQUIRE(m.accept(R"(", "l": [1)"));
    for (int i = 0; i < 200; ++i) REQUIRE(m.accept(", 1"));
    const auto list_200 = m.states();
    for (int i = 0; i < 2000; ++i) REQUIRE(m.accept(", 1"));
    CHECK(m.states() == list_200);
    CHECK(m.accept("]}"));
    CHECK(m.complete());
}

TEST_CASE("format: null and the empty string ask for none") {
    for (const char* none : {"null", R"("")"}) {
        auto g = runner::format_grammar(ordered_json::parse(none));
        REQUIRE(g.ok());
        CHECK_FALSE(g->has_value());
    }
}
