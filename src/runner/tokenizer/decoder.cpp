#include "runner/tokenizer/decoder.h"

#include "runner/tokenizer/byte_level.h"
#include "runner/tokenizer/regex.h"
#include "runner/tokenizer/utf8.h"

namespace tokenizer {

namespace {

// All tokens' bytes joined, then invalid UTF-8 replaced (Rust's from_utf8_lossy).
class ByteLevel final : public Decoder {
  public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string bytes;
        for (const auto& t : tokens)
            if (!byte_level_decode(t, bytes)) bytes += t;  // outside the alphabet: the token's own bytes
        tokens.assign(1, utf8_sanitize(bytes));
    }
};

class Metaspace final : public Decoder {
  public:
    Metaspace(std::string replacement, bool strip_first)
        : replacement_(std::move(replacement)), strip_first_(strip_first) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string out;
            const auto& t = tokens[i];
            std::size_t pos = 0;
            if (i == 0 && strip_first_ && t.compare(0, replacement_.size(), replacement_) == 0)
                pos = replacement_.size();
            while (pos < t.size()) {
                if (t.compare(pos, replacement_.size(), replacement_) == 0) {
                    out += ' ';
                    pos += replacement_.size();
                } else {
                    out += t[pos++];
                }
            }
            tokens[i] = std::move(out);
        }
    }

  private:
    std::string replacement_;
    bool strip_first_;
};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Runs of <0xNN> tokens become their bytes; a run that is not valid UTF-8 becomes one U+FFFD per
// byte (Hugging Face's rule; transformers.js replaces per maximal subpart instead).
class ByteFallback final : public Decoder {
  public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string run;
        std::size_t run_tokens = 0;
        const auto flush = [&] {
            if (run_tokens == 0) return;
            if (utf8_is_valid(run)) {
                out.push_back(run);
            } else {
                for (std::size_t k = 0; k < run_tokens; ++k) out.emplace_back(replacement_character);
            }
            run.clear();
            run_tokens = 0;
        };
        for (auto& t : tokens) {
            const int byte = byte_fallback_byte(t);
            if (byte >= 0) {
                run.push_back(static_cast<char>(byte));
                ++run_tokens;
            } else {
                flush();
                out.push_back(std::move(t));
            }
        }
        flush();
        tokens = std::move(out);
    }
};

class Fuse final : public Decoder {
  public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
    }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class Strip final : public Decoder {
  public:
    Strip(std::string content, std::size_t start, std::size_t stop)
        : content_(std::move(content)), start_(start), stop_(stop) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        const std::size_t n = content_.size();
        for (auto& t : tokens) {
            std::size_t begin = 0, end = t.size();
            for (std::size_t k = 0; k < start_ && end - begin >= n && t.compare(begin, n, content_) == 0; ++k)
                begin += n;
            for (std::size_t k = 0; k < stop_ && end - begin >= n && t.compare(end - n, n, content_) == 0; ++k)
                end -= n;
            t = t.substr(begin, end - begin);
        }
    }

  private:
    std::string content_;
    std::size_t start_, stop_;
};

class Replace final : public Decoder {
  public:
    Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::vector<MatchRange> matches;
        for (auto& t : tokens) {
            matches.clear();
            pattern_.find_all(t, matches);
            if (matches.empty()) continue;
            std::string out;
            std::size_t last = 0;
            for (const auto& m : matches) {
                out.append(t, last, m.start - last);
                out += content_;
                last = m.end;
            }
            out.append(t, last, std::string::npos);
            t = std::move(out);
        }
    }

  private:
    Regex pattern_;
    std::string content_;
};

class Sequence final : public Decoder {
  public:
    explicit Sequence(std::vector<DecoderPtr> steps) : steps_(std::move(steps)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (const auto& step : steps_) step->decode_chain(tokens);
    }

  private:
    std::vector<DecoderPtr> steps_;
};

std::size_t parse_count(const JsonView& json, std::string_view key) {
    const auto v = json.get_int(key, 0);
    if (v < 0 || v > 1 << 20) json.at(key).fail("must be a small non-negative integer");
    return static_cast<std::size_t>(v);
}

}  // namespace

int byte_fallback_byte(std::string_view token) {
    if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
    const int high = hex_digit(token[3]), low = hex_digit(token[4]);
    return high < 0 || low < 0 ? -1 : high * 16 + low;
}

DecoderPtr parse_decoder(const JsonView& json) {
    if (json.is_null()) return nullptr;
    const auto& type = json.at("type").as_string();
    if (type == "ByteLevel") return std::make_unique<ByteLevel>();
    if (type == "Metaspace") {
        bool strip_first = json.get_bool("add_prefix_space", true);
        if (json.has("prepend_scheme") && !json.at("prepend_scheme").is_null())
            strip_first = json.at("prepend_scheme").as_string() != "never";
        return std::make_unique<Metaspace>(json.at("replacement").as_string(), strip_first);
    }
    if (type == "ByteFallback") return std::make_unique<ByteFallback>();
    if (type == "Fuse") return std::make_unique<Fuse>();
    if (type == "Strip") {
        const auto content = json.at("content").as_string();
        if (content.empty()) json.at("content").fail("must not be empty");
        return std::make_unique<Strip>(content, parse_count(json, "start"), parse_count(json, "stop"));
    }
    if (type == "Replace")
        return std::make_unique<Replace>(parse_pattern(json.at("pattern")), json.at("content").as_string());
    if (type == "Sequence") {
        const auto list = json.at("decoders");
        if (!list.is_array()) list.expected("an array");
        std::vector<DecoderPtr> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step = parse_decoder(list.item(i));
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<Sequence>(std::move(steps));
    }
    json.at("type").fail("unsupported decoder type \"" + type +
                         "\" (supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence)");
}

}  // namespace tokenizer
