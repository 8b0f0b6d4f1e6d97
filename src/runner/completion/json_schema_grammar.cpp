#include "runner/completion/json_schema_grammar.h"

#include <array>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace runner {

namespace {

using grammar::byte;
using grammar::bytes;
using grammar::literal;
using grammar::ref;
using grammar::Sequence;
using json = nlohmann::ordered_json;

struct SchemaError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A place in the schema for a message: its JSON pointer, "/" for the root.
std::string at(const std::string& where) { return where.empty() ? "/" : where; }

// A length or item count is spelled out as rules, one a repetition: up to this many each, and this many
// symbols in all, so that a schema cannot make a grammar thousands of times its size. Past them, and past
// this many properties in one object or $ref and subschema levels, the schema is refused: a request's
// schema must not exhaust the runner's memory or stack.
constexpr long long most_repetitions = 10000;
constexpr std::size_t most_spelled = std::size_t{1} << 20, most_properties = 1000;
constexpr int most_levels = 256;

const std::set<std::string> ignored = {
    "title",   "description", "default",          "examples",         "$schema",    "$id",    "$comment",
    "$defs",   "definitions", "deprecated",       "readOnly",         "writeOnly",  "format", "minimum",
    "maximum", "multipleOf",  "exclusiveMinimum", "exclusiveMaximum", "uniqueItems"};
const std::set<std::string> supported = {"type",      "properties", "required", "additionalProperties",
                                         "items",     "minItems",   "maxItems", "minLength",
                                         "maxLength", "enum",       "const",    "anyOf",
                                         "oneOf",     "allOf",      "$ref"};

class SchemaGrammar {
  public:
    explicit SchemaGrammar(const json& root) : root_(root) { build_common(); }

    grammar::Grammar any_object() {
        g_.set_root(object_any_);
        return std::move(g_);
    }
    grammar::Grammar schema() {
        g_.set_root(value_of(root_, ""));
        if (g_.left_recursive())
            throw SchemaError(
                "a $ref leads back to where it started before any value is written (\"A\": {\"$ref\": "
                "\"#/$defs/A\"}): no value could ever end");
        return std::move(g_);
    }

  private:
    // `sequence` optional: ε | sequence.
    int optional(Sequence sequence) { return g_.add_rule({{}, std::move(sequence)}); }

    // `item` between min and max times (max < 0: no limit).
    Sequence repeat(const Sequence& item, long long min, long long max) {
        spelled_ += static_cast<std::size_t>(std::max(min, max)) * item.size();
        if (spelled_ > most_spelled)
            throw SchemaError("/: its lengths and item counts spell out more than " + std::to_string(most_spelled) +
                              " symbols to enforce");
        Sequence out;
        for (long long i = 0; i < min; ++i) out = out + item;
        if (max < 0) {
            const int tail = g_.add_rule();
            g_.add_alternative(tail, {});
            g_.add_alternative(tail, item + Sequence{ref(tail)});
            out.push_back(ref(tail));
            return out;
        }
        int rest = -1;  // up to (max - min) more, built from the innermost
        for (long long i = min; i < max; ++i) rest = optional(rest < 0 ? item : item + Sequence{ref(rest)});
        if (rest >= 0) out.push_back(ref(rest));
        return out;
    }

    void build_common() {
        const Sequence digit = {bytes({{'0', '9'}})};
        ws_ = g_.add_rule({{}, literal(" "), literal("\n") + repeat({bytes({{' ', ' '}, {'\t', '\t'}})}, 0, 20)});
        const Sequence hex = {bytes({{'0', '9'}, {'a', 'f'}, {'A', 'F'}})};
        const Sequence cont = {bytes({{0x80, 0xBF}})};
        char_ = g_.add_rule({
            {bytes({{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7F}})},
            Sequence{bytes({{0xC2, 0xDF}})} + cont,
            Sequence{bytes({{0xE0, 0xEF}})} + cont + cont,
            Sequence{bytes({{0xF0, 0xF4}})} + cont + cont + cont,
            Sequence{byte('\\'), bytes({{'"', '"'},
                                        {'\\', '\\'},
                                        {'/', '/'},
                                        {'b', 'b'},
                                        {'f', 'f'},
                                        {'n', 'n'},
                                        {'r', 'r'},
                                        {'t', 't'}})},
            literal("\\u") + hex + hex + hex + hex,
        });
        string_ = g_.add_rule({literal("\"") + repeat({ref(char_)}, 0, -1) + literal("\"")});
        const int integral = g_.add_rule({literal("0"), Sequence{bytes({{'1', '9'}})} + repeat(digit, 0, 15)});
        integer_ = g_.add_rule({Sequence{ref(optional(literal("-"))), ref(integral)}});
        const int fraction = optional(literal(".") + repeat(digit, 1, 16));
        const int exponent =
            optional(Sequence{bytes({{'e', 'e'}, {'E', 'E'}}), ref(optional({bytes({{'-', '-'}, {'+', '+'}})}))} +
                     repeat(digit, 1, 3));
        number_ = g_.add_rule({Sequence{ref(integer_), ref(fraction), ref(exponent)}});
        boolean_ = g_.add_rule({literal("true"), literal("false")});
        null_ = g_.add_rule({literal("null")});
        value_ = g_.add_rule();
        object_any_ = object_of_values(value_);
        array_any_ = array_of(value_, 0, -1);
        for (const int r : {object_any_, array_any_, string_, number_, boolean_, null_})
            g_.add_alternative(value_, {ref(r)});
    }

    // "{" members with any names, each value matching `value` "}".
    int object_of_values(int value) {
        const Sequence member = Sequence{ref(string_), ref(ws_), byte(':'), ref(ws_), ref(value), ref(ws_)};
        const Sequence more = repeat(literal(",") + Sequence{ref(ws_)} + member, 0, -1);
        return g_.add_rule({literal("{") + Sequence{ref(ws_), ref(optional(member + more))} + literal("}")});
    }

    int array_of(int item_rule, long long min, long long max) {
        const Sequence item = {ref(item_rule), ref(ws_)};
        if (max == 0) return g_.add_rule({literal("[") + Sequence{ref(ws_)} + literal("]")});
        const Sequence more = literal(",") + Sequence{ref(ws_)} + item;
        const Sequence list = item + repeat(more, std::max(0LL, min - 1), max < 0 ? -1 : max - 1);
        const Sequence body = min == 0 ? Sequence{ref(optional(list))} : list;
        return g_.add_rule({literal("[") + Sequence{ref(ws_)} + body + literal("]")});
    }

    // A schema's minimum and maximum count (minItems and maxItems, or the lengths); max -1 when absent.
    static std::pair<long long, long long> counts(const json& schema, const char* min_key, const char* max_key,
                                                  const std::string& where) {
        const auto count = [&](const char* key, long long fallback) {
            if (!schema.contains(key)) return fallback;
            if (!schema[key].is_number_integer() || schema[key].get<long long>() < 0)
                throw SchemaError(where + "/" + key + ": must be a non-negative integer");
            const long long n = schema[key].get<long long>();
            if (n > most_repetitions)
                throw SchemaError(where + "/" + key + ": " + std::to_string(n) + " is more than the " +
                                  std::to_string(most_repetitions) + " a format enforces");
            return n;
        };
        const long long min = count(min_key, 0), max = count(max_key, -1);
        if (max >= 0 && min > max)
            throw SchemaError(at(where) + ": " + min_key + " " + std::to_string(min) + " is more than " + max_key +
                              " " + std::to_string(max));
        return {min, max};
    }

    int value_of(const json& schema, const std::string& where) {
        struct Level {
            int& depth;
            explicit Level(int& d) : depth(++d) {}
            ~Level() { --depth; }
        } level(depth_);
        if (depth_ > most_levels)
            throw SchemaError(at(where) + ": subschemas and $refs nest more than " + std::to_string(most_levels) +
                              " levels deep");
        if (schema.is_boolean()) {
            if (schema.get<bool>()) return value_;
            throw SchemaError(at(where) + ": the schema false admits no value");
        }
        if (!schema.is_object()) throw SchemaError(at(where) + ": a schema must be an object");
        for (const auto& [key, _] : schema.items())
            if (!ignored.count(key) && !supported.count(key))
                throw SchemaError(where + "/" + key + ": JSON Schema keyword \"" + key + "\" is not supported");
        if (schema.contains("$ref")) return reference(schema, where);
        if (schema.contains("const")) return g_.add_rule({literal(schema["const"].dump())});
        if (schema.contains("enum")) {
            if (!schema["enum"].is_array() || schema["enum"].empty())
                throw SchemaError(where + "/enum: must be a non-empty array");
            std::vector<Sequence> values;
            for (const auto& v : schema["enum"]) values.push_back(literal(v.dump()));
            return g_.add_rule(std::move(values));
        }
        for (const char* any : {"anyOf", "oneOf"})
            if (schema.contains(any)) return alternatives(schema[any], where + "/" + any);
        if (schema.contains("allOf")) {
            if (!schema["allOf"].is_array() || schema["allOf"].size() != 1)
                throw SchemaError(where + "/allOf: only an allOf of one schema is supported");
            return value_of(schema["allOf"][0], where + "/allOf/0");
        }
        if (!schema.contains("type")) {
            for (const char* key : {"properties", "required", "additionalProperties"})
                if (schema.contains(key)) return typed("object", schema, where);
            for (const char* key : {"items", "minItems", "maxItems"})
                if (schema.contains(key)) return typed("array", schema, where);
            for (const char* key : {"minLength", "maxLength"})
                if (schema.contains(key)) return typed("string", schema, where);
            return value_;
        }
        const json& type = schema["type"];
        if (type.is_string()) return typed(type.get<std::string>(), schema, where);
        if (!type.is_array() || type.empty())
            throw SchemaError(where + "/type: must be a type name or a non-empty array of them");
        const int rule = g_.add_rule();
        for (const auto& t : type) {
            if (!t.is_string()) throw SchemaError(where + "/type: must be a type name or a non-empty array of them");
            g_.add_alternative(rule, {ref(typed(t.get<std::string>(), schema, where))});
        }
        return rule;
    }

    int alternatives(const json& list, const std::string& where) {
        if (!list.is_array() || list.empty()) throw SchemaError(where + ": must be a non-empty array of schemas");
        const int rule = g_.add_rule();
        for (std::size_t i = 0; i < list.size(); ++i)
            g_.add_alternative(rule, {ref(value_of(list[i], where + "/" + std::to_string(i)))});
        return rule;
    }

    int reference(const json& schema, const std::string& where) {
        const json& target = schema["$ref"];
        if (!target.is_string() || target.get<std::string>().rfind('#', 0) != 0)
            throw SchemaError(where + "/$ref: only references into the same schema (\"#/...\") are supported");
        const std::string pointer = target.get<std::string>().substr(1);
        if (const auto known = refs_.find(pointer); known != refs_.end()) return known->second;
        const int rule = g_.add_rule();
        refs_[pointer] = rule;  // before the target is built: it may refer to itself
        const json* resolved = nullptr;
        try {
            resolved = &root_.at(json::json_pointer(pointer));
        } catch (const json::exception&) {
            throw SchemaError(where + "/$ref: \"" + target.get<std::string>() + "\" points at nothing in the schema");
        }
        g_.add_alternative(rule, {ref(value_of(*resolved, pointer))});
        return rule;
    }

    int typed(const std::string& type, const json& schema, const std::string& where) {
        if (type == "object") return object(schema, where);
        if (type == "array") {
            const int item = schema.contains("items") ? value_of(schema["items"], where + "/items") : value_;
            const auto [min, max] = counts(schema, "minItems", "maxItems", where);
            return array_of(item, min, max);
        }
        if (type == "string") {
            if (!schema.contains("minLength") && !schema.contains("maxLength")) return string_;
            const auto [min, max] = counts(schema, "minLength", "maxLength", where);
            return g_.add_rule({literal("\"") + repeat({ref(char_)}, min, max) + literal("\"")});
        }
        if (type == "number") return number_;
        if (type == "integer") return integer_;
        if (type == "boolean") return boolean_;
        if (type == "null") return null_;
        throw SchemaError(where + "/type: unknown type \"" + type + "\"");
    }

    int object(const json& schema, const std::string& where) {
        const json extra = schema.value("additionalProperties", json(true));
        if (!schema.contains("properties") && !schema.contains("required")) {
            if (extra.is_boolean() && !extra.get<bool>())
                return g_.add_rule({literal("{") + Sequence{ref(ws_)} + literal("}")});
            return extra.is_boolean() ? object_any_
                                      : object_of_values(value_of(extra, where + "/additionalProperties"));
        }
        // Only `required`: those names, with any value.
        json properties = json::object();
        if (schema.contains("properties")) {
            properties = schema["properties"];
            if (!properties.is_object()) throw SchemaError(where + "/properties: must be an object");
        }
        if (schema.contains("additionalProperties") && !(extra.is_boolean() && !extra.get<bool>()))
            throw SchemaError(where + "/additionalProperties: only false is supported beside properties");
        std::set<std::string> required;
        if (schema.contains("required")) {
            if (!schema["required"].is_array()) throw SchemaError(where + "/required: must be an array of names");
            for (const auto& name : schema["required"]) {
                if (!name.is_string()) throw SchemaError(where + "/required: " + name.dump() + " is not a name");
                if (!schema.contains("properties")) properties[name.get<std::string>()] = true;
                if (!properties.contains(name.get<std::string>()))
                    throw SchemaError(where + "/required: " + name.dump() + " is not one of the properties");
                required.insert(name.get<std::string>());
            }
        }
        if (properties.size() > most_properties)
            throw SchemaError(where + "/properties: more than " + std::to_string(most_properties) + " properties");
        // In the schema's order (an ordered_json keeps it): the order the model is asked to write in.
        std::vector<std::pair<Sequence, bool>> members;  // a member's bytes, and whether it is required
        for (const auto& [name, sub] : properties.items()) {
            const int value = value_of(sub, where + "/properties/" + name);
            members.emplace_back(
                literal(json(name).dump()) + Sequence{ref(ws_), byte(':'), ref(ws_), ref(value), ref(ws_)},
                required.count(name) > 0);
        }
        // rest[i][first]: the members from i on, `first` when none is written yet (no comma before the next).
        // Built from the last: member i, then the rest; or, when it is optional, the rest without it.
        std::vector<std::array<int, 2>> rest(members.size() + 1);
        rest.back() = {g_.add_rule({{}}), g_.add_rule({{}})};
        for (std::size_t i = members.size(); i-- > 0;) {
            for (const bool first : {false, true}) {
                const Sequence comma = first ? Sequence{} : literal(",") + Sequence{ref(ws_)};
                const int rule = g_.add_rule({comma + members[i].first + Sequence{ref(rest[i + 1][0])}});
                if (!members[i].second) g_.add_alternative(rule, {ref(rest[i + 1][first])});
                rest[i][first] = rule;
            }
        }
        return g_.add_rule({literal("{") + Sequence{ref(ws_), ref(rest[0][1])} + literal("}")});
    }

    const json& root_;
    grammar::Grammar g_;
    std::map<std::string, int> refs_;
    int ws_ = -1, char_ = -1, string_ = -1, integer_ = -1, number_ = -1, boolean_ = -1, null_ = -1, value_ = -1;
    int object_any_ = -1, array_any_ = -1;
    std::size_t spelled_ = 0;  // symbols that repeat() has spelled out
    int depth_ = 0;            // value_of's nesting
};

}  // namespace

common::Result<std::optional<grammar::Grammar>> format_grammar(const nlohmann::ordered_json& format) {
    if (format.is_null() || format == "") return std::optional<grammar::Grammar>{};
    try {
        if (format == "json") return std::optional<grammar::Grammar>{SchemaGrammar(format).any_object()};
        if (format.is_object()) return std::optional<grammar::Grammar>{SchemaGrammar(format).schema()};
    } catch (const SchemaError& e) {
        return common::make_error(std::string("format: ") + e.what());
    }
    return common::make_error("format: " + format.dump() + " is neither \"json\" nor a JSON Schema object");
}

}  // namespace runner
