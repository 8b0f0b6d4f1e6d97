#include "runner/tokenizer/json_view.h"

namespace tokenizer {

namespace {
const nlohmann::json null_value;

std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}
}  // namespace

std::string json_type_name(const nlohmann::json& value) {
    switch (value.type()) {
        case nlohmann::json::value_t::null: return "null";
        case nlohmann::json::value_t::object: return "object";
        case nlohmann::json::value_t::array: return "array";
        case nlohmann::json::value_t::string: return "string";
        case nlohmann::json::value_t::boolean: return "boolean";
        case nlohmann::json::value_t::number_integer:
        case nlohmann::json::value_t::number_unsigned: return "integer";
        case nlohmann::json::value_t::number_float: return "number";
        default: return "binary";
    }
}

void JsonView::fail(const std::string& problem) const {
    throw SchemaError((path_.empty() ? std::string("top level") : path_) + ": " + problem);
}

void JsonView::expected(std::string_view what) const {
    fail("expected " + std::string(what) + ", found " + json_type_name(*value_));
}

bool JsonView::has(std::string_view key) const { return value_->is_object() && value_->find(key) != value_->end(); }

JsonView JsonView::at(std::string_view key) const {
    if (!value_->is_object()) expected("an object");
    const auto it = value_->find(key);
    if (it == value_->end()) fail("missing key \"" + std::string(key) + "\"");
    return {*it, join(path_, key)};
}

JsonView JsonView::find(std::string_view key) const {
    if (!value_->is_object()) expected("an object");
    const auto it = value_->find(key);
    if (it == value_->end()) return {null_value, join(path_, key)};
    return {*it, join(path_, key)};
}

JsonView JsonView::item(std::size_t index) const {
    if (!value_->is_array()) expected("an array");
    if (index >= value_->size()) fail("index " + std::to_string(index) + " out of range");
    return {(*value_)[index], path_ + "[" + std::to_string(index) + "]"};
}

std::size_t JsonView::size() const {
    if (!value_->is_array() && !value_->is_object()) expected("an array or object");
    return value_->size();
}

const std::string& JsonView::as_string() const {
    if (!value_->is_string()) expected("a string");
    return value_->get_ref<const std::string&>();
}

bool JsonView::as_bool() const {
    if (!value_->is_boolean()) expected("a boolean");
    return value_->get<bool>();
}

std::int64_t JsonView::as_int() const {
    if (value_->is_number_unsigned()) {
        const auto v = value_->get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(INT64_MAX)) fail("integer out of range");
        return static_cast<std::int64_t>(v);
    }
    if (!value_->is_number_integer()) expected("an integer");
    return value_->get<std::int64_t>();
}

bool JsonView::get_bool(std::string_view key, bool fallback) const {
    const auto v = find(key);
    return v.is_null() ? fallback : v.as_bool();
}

std::string JsonView::get_string(std::string_view key, std::string fallback) const {
    const auto v = find(key);
    return v.is_null() ? fallback : v.as_string();
}

std::int64_t JsonView::get_int(std::string_view key, std::int64_t fallback) const {
    const auto v = find(key);
    return v.is_null() ? fallback : v.as_int();
}

}  // namespace tokenizer
