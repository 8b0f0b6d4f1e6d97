// Typed access to tokenizer.json with located errors: every lookup knows its key path, so a wrong
// type reads "model.merges[3]: expected a string or a pair of strings, found number".
// Errors are thrown as SchemaError inside the loader and turned into common::Error at its boundary
// (Tokenizer::load), so that the dozens of field reads stay one line each.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tokenizer {

struct SchemaError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class JsonView {
  public:
    JsonView(const nlohmann::json& value, std::string path) : value_(&value), path_(std::move(path)) {}

    const nlohmann::json& raw() const { return *value_; }
    const std::string& path() const { return path_; }
    bool is_null() const { return value_->is_null(); }
    bool is_object() const { return value_->is_object(); }
    bool is_array() const { return value_->is_array(); }
    bool is_string() const { return value_->is_string(); }

    // Member access; `at` requires the key, `find` returns null-valued views for absent keys.
    JsonView at(std::string_view key) const;
    bool has(std::string_view key) const;
    JsonView find(std::string_view key) const;
    JsonView item(std::size_t index) const;
    std::size_t size() const;  // of an array or object

    const std::string& as_string() const;
    bool as_bool() const;
    std::int64_t as_int() const;

    // Optional members with defaults (absent or null gives the default; a wrong type still fails).
    bool get_bool(std::string_view key, bool fallback) const;
    std::string get_string(std::string_view key, std::string fallback) const;
    std::int64_t get_int(std::string_view key, std::int64_t fallback) const;

    [[noreturn]] void fail(const std::string& problem) const;
    [[noreturn]] void expected(std::string_view what) const;

  private:
    const nlohmann::json* value_;
    std::string path_;
};

std::string json_type_name(const nlohmann::json& value);

}  // namespace tokenizer
