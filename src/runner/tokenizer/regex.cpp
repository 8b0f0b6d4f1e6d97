#define PCRE2_CODE_UNIT_WIDTH 8
#include "runner/tokenizer/regex.h"

#include <pcre2.h>

#include "runner/tokenizer/utf8.h"

namespace tokenizer {

namespace {

struct CodeDeleter {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct MatchDataDeleter {
    void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

constexpr std::string_view extra_space = "\\x{85}";

}  // namespace

struct Regex::Impl {
    std::unique_ptr<pcre2_code, CodeDeleter> code;  // null for a literal
    std::string literal;
};

std::string translate_pattern(std::string_view pattern) {
    std::string out;
    out.reserve(pattern.size() + 16);
    bool in_class = false;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        const char c = pattern[i];
        if (c == '\\' && i + 1 < pattern.size()) {
            const char n = pattern[i + 1];
            if (n == 's') {
                out += in_class ? "\\s" + std::string(extra_space) : "[\\s" + std::string(extra_space) + "]";
            } else if (n == 'S' && !in_class) {
                out += "[^\\s" + std::string(extra_space) + "]";
            } else {
                out += c;
                out += n;
            }
            ++i;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal member, not the end.
            if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
            if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        out += c;
    }
    return out;
}

Regex::Regex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

common::Result<Regex> Regex::compile(std::string_view pattern, std::string_view where) {
    const std::string translated = translate_pattern(pattern);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
    if (code == nullptr) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error_code, message, sizeof message);
        return common::make_error(std::string(where) + ": regex \"" + std::string(pattern) +
                                  "\" does not compile at offset " + std::to_string(error_offset) + ": " +
                                  reinterpret_cast<const char*>(message));
    }
    auto impl = std::make_unique<Impl>();
    impl->code.reset(code);
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    return Regex(std::move(impl));
}

Regex Regex::literal(std::string_view text) {
    auto impl = std::make_unique<Impl>();
    impl->literal = std::string(text);
    return Regex(std::move(impl));
}

void Regex::find_all(std::string_view subject, std::vector<MatchRange>& out) const {
    if (!impl_->code) {
        const auto& lit = impl_->literal;
        if (lit.empty()) return;
        for (std::size_t pos = subject.find(lit); pos != std::string_view::npos; pos = subject.find(lit, pos)) {
            out.push_back({pos, pos + lit.size()});
            pos += lit.size();
        }
        return;
    }
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
        pcre2_match_data_create_from_pattern(impl_->code.get(), nullptr));
    const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
    std::size_t offset = 0;
    while (offset <= subject.size()) {
        const int rc =
            pcre2_match(impl_->code.get(), text, subject.size(), offset, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
        if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a resource limit: the rest stays unmatched
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
        const std::size_t start = ovector[0], end = ovector[1];
        if (end > start) {
            out.push_back({start, end});
            offset = end;
        } else {
            // Empty match: step over one character so the scan moves on.
            if (start >= subject.size()) break;
            offset = start + utf8_length(static_cast<unsigned char>(subject[start]));
        }
    }
}

// The {"String": s} / {"Regex": r} pattern objects of Split, Replace and the Replace decoder.
Regex parse_pattern(const JsonView& json) {
    if (json.has("String")) return Regex::literal(json.at("String").as_string());
    if (json.has("Regex")) {
        const auto r = json.at("Regex");
        auto compiled = Regex::compile(r.as_string(), r.path());
        if (!compiled) throw SchemaError(compiled.error().message);
        return std::move(compiled).value();
    }
    json.fail("expected a pattern object with \"String\" or \"Regex\"");
}

}  // namespace tokenizer
