#include "runner/tokenizer/normalizer.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

#include "runner/tokenizer/regex.h"

namespace tokenizer {

namespace {

class Nfc final : public Normalizer {
  public:
    void normalize(std::string& text) const override { text = nfc(text); }
};

class Prepend final : public Normalizer {
  public:
    explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
    void normalize(std::string& text) const override {
        if (!text.empty()) text.insert(0, prefix_);
    }

  private:
    std::string prefix_;
};

class Replace final : public Normalizer {
  public:
    Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void normalize(std::string& text) const override {
        std::vector<MatchRange> matches;
        pattern_.find_all(text, matches);
        if (matches.empty()) return;
        std::string out;
        out.reserve(text.size() + matches.size() * content_.size());
        std::size_t last = 0;
        for (const auto& m : matches) {
            out.append(text, last, m.start - last);
            out += content_;
            last = m.end;
        }
        out.append(text, last, std::string::npos);
        text = std::move(out);
    }

  private:
    Regex pattern_;
    std::string content_;
};

class Sequence final : public Normalizer {
  public:
    explicit Sequence(std::vector<NormalizerPtr> steps) : steps_(std::move(steps)) {}
    void normalize(std::string& text) const override {
        for (const auto& step : steps_) step->normalize(text);
    }

  private:
    std::vector<NormalizerPtr> steps_;
};

}  // namespace

NormalizerPtr parse_normalizer(const JsonView& json) {
    if (json.is_null()) return nullptr;
    const auto& type = json.at("type").as_string();
    if (type == "NFC") return std::make_unique<Nfc>();
    if (type == "Prepend") return std::make_unique<Prepend>(json.at("prepend").as_string());
    if (type == "Replace")
        return std::make_unique<Replace>(parse_pattern(json.at("pattern")), json.at("content").as_string());
    if (type == "Sequence") {
        const auto list = json.at("normalizers");
        if (!list.is_array()) list.expected("an array");
        std::vector<NormalizerPtr> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step = parse_normalizer(list.item(i));
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<Sequence>(std::move(steps));
    }
    json.at("type").fail("unsupported normalizer type \"" + type + "\" (supported: NFC, Prepend, Replace, Sequence)");
}

std::string nfc(const std::string& text) {
    bool ascii = true;
    for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return text;  // ASCII is always NFC

    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2* normalizer = unorm2_getNFCInstance(&status);
    if (U_FAILURE(status)) return text;
    // UTF-8 → UTF-16 → NFC → UTF-8 (unorm2 works on UTF-16).
    std::vector<UChar> utf16(text.size() + 1);
    int32_t utf16_len = 0;
    u_strFromUTF8(utf16.data(), static_cast<int32_t>(utf16.size()), &utf16_len, text.data(),
                  static_cast<int32_t>(text.size()), &status);
    if (U_FAILURE(status)) return text;
    if (unorm2_isNormalized(normalizer, utf16.data(), utf16_len, &status) && U_SUCCESS(status)) return text;
    status = U_ZERO_ERROR;
    std::vector<UChar> normalized(static_cast<std::size_t>(utf16_len) * 3 + 16);
    const int32_t normalized_len = unorm2_normalize(normalizer, utf16.data(), utf16_len, normalized.data(),
                                                    static_cast<int32_t>(normalized.size()), &status);
    if (U_FAILURE(status)) return text;
    std::string out(static_cast<std::size_t>(normalized_len) * 3 + 4, '\0');
    int32_t out_len = 0;
    u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &out_len, normalized.data(), normalized_len, &status);
    if (U_FAILURE(status)) return text;
    out.resize(static_cast<std::size_t>(out_len));
    return out;
}

}  // namespace tokenizer
