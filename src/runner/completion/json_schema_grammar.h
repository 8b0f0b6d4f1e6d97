// Ollama's `format` as a grammar: "json" (any JSON object, as the grammar Ollama gives llama-server) or a
// JSON Schema. Whitespace between tokens is limited to one space or a newline and an indent of at most
// 20, numbers to 16 digits before and after the point, so that a model cannot spin in blanks or digits.
//
// Schemas: type (one or several), properties (written in their order; required ones always, others may be
// left out), required, additionalProperties (false, or alone a schema for every value), items, minItems,
// maxItems, minLength, maxLength, enum, const, anyOf, oneOf (as anyOf), allOf of one schema, $ref into the
// same document (#/$defs/..., #/definitions/..., # itself; recursion allowed), and the boolean schema
// true. Not enforced, as llama.cpp leaves them too: format (date-time, ...), minimum, maximum, their
// exclusive forms, multipleOf and uniqueItems. Annotations are ignored. Anything else (pattern,
// prefixItems, not, if, ...) is an error naming the keyword and where it is.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>

#include "common/result.h"
#include "runner/completion/grammar.h"

namespace runner {

// `format` as Ollama sends it: null or "" (none: nullopt), "json", or a schema object; anything else is an
// error. Ordered: properties are written in the order the schema lists them.
common::Result<std::optional<grammar::Grammar>> format_grammar(const nlohmann::ordered_json& format);

}  // namespace runner
