#include "runner/tokenizer/pre_tokenizer.h"

#include "runner/tokenizer/byte_level.h"

namespace tokenizer {

namespace {

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Splits every piece by the ranges `ranges_of` returns for it.
template <class RangesOf>
void split_each(std::vector<Piece>& pieces, RangesOf&& ranges_of) {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 2);
    for (auto& piece : pieces) {
        const auto ranges = ranges_of(piece.text);
        for (const auto& r : ranges)
            out.push_back({piece.text.substr(r.start, r.end - r.start), piece.at_start && r.start == 0});
    }
    pieces = std::move(out);
}

class Split final : public PreTokenizer {
  public:
    Split(Regex pattern, SplitBehavior behavior, bool invert)
        : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        std::vector<MatchRange> matches;
        split_each(pieces, [&](const std::string& text) {
            matches.clear();
            pattern_.find_all(text, matches);
            return split_ranges(text.size(), matches, behavior_, invert_);
        });
    }

  private:
    Regex pattern_;
    SplitBehavior behavior_;
    bool invert_;
};

class ByteLevel final : public PreTokenizer {
  public:
    ByteLevel(bool add_prefix_space, std::unique_ptr<Regex> regex)
        : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        if (add_prefix_space_)
            for (auto& p : pieces)
                if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
        if (regex_) {
            std::vector<MatchRange> matches;
            split_each(pieces, [&](const std::string& text) {
                matches.clear();
                regex_->find_all(text, matches);
                return split_ranges(text.size(), matches, SplitBehavior::isolated, false);
            });
        }
        std::string mapped;
        for (auto& p : pieces) {
            mapped.clear();
            byte_level_encode(p.text, mapped);
            p.text.swap(mapped);
        }
    }

  private:
    bool add_prefix_space_;
    std::unique_ptr<Regex> regex_;  // GPT-2's pattern when use_regex, else null
};

enum class PrependScheme { always, first, never };

class Metaspace final : public PreTokenizer {
  public:
    Metaspace(std::string replacement, PrependScheme scheme, bool split)
        : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        for (auto& p : pieces) {
            std::string replaced;
            replaced.reserve(p.text.size() + replacement_.size());
            for (const char c : p.text) {
                if (c == ' ')
                    replaced += replacement_;
                else
                    replaced += c;
            }
            const bool starts = replaced.compare(0, replacement_.size(), replacement_) == 0;
            if (!starts && (scheme_ == PrependScheme::always || (scheme_ == PrependScheme::first && p.at_start)))
                replaced.insert(0, replacement_);
            p.text = std::move(replaced);
        }
        if (!split_) return;
        const auto literal = Regex::literal(replacement_);
        std::vector<MatchRange> matches;
        split_each(pieces, [&](const std::string& text) {
            matches.clear();
            literal.find_all(text, matches);
            return split_ranges(text.size(), matches, SplitBehavior::merged_with_next, false);
        });
    }

  private:
    std::string replacement_;
    PrependScheme scheme_;
    bool split_;
};

class Digits final : public PreTokenizer {
  public:
    Digits(bool individual, Regex numeric) : individual_(individual), numeric_(std::move(numeric)) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        std::vector<MatchRange> matches;
        split_each(pieces, [&](const std::string& text) {
            matches.clear();
            numeric_.find_all(text, matches);  // one match per numeric character
            return split_ranges(text.size(), matches, individual_ ? SplitBehavior::isolated : SplitBehavior::contiguous,
                                false);
        });
    }

  private:
    bool individual_;
    Regex numeric_;
};

class Sequence final : public PreTokenizer {
  public:
    explicit Sequence(std::vector<PreTokenizerPtr> steps) : steps_(std::move(steps)) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        for (const auto& step : steps_) step->pre_tokenize(pieces);
    }

  private:
    std::vector<PreTokenizerPtr> steps_;
};

SplitBehavior parse_behavior(const JsonView& json) {
    const auto& name = json.as_string();
    if (name == "Removed") return SplitBehavior::removed;
    if (name == "Isolated") return SplitBehavior::isolated;
    if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
    if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
    if (name == "Contiguous") return SplitBehavior::contiguous;
    json.fail("unknown split behavior \"" + name + "\"");
}

Regex compile_or_throw(std::string_view pattern, const std::string& where) {
    auto r = Regex::compile(pattern, where);
    if (!r) throw SchemaError(r.error().message);
    return std::move(r).value();
}

}  // namespace

std::vector<MatchRange> split_ranges(std::size_t length, const std::vector<MatchRange>& matches, SplitBehavior behavior,
                                     bool invert) {
    // Cover the text with (range, is_match) in order, as Pattern::find_matches does.
    struct Part {
        MatchRange range;
        bool is_match;
    };
    std::vector<Part> parts;
    parts.reserve(matches.size() * 2 + 1);
    std::size_t prev = 0;
    for (const auto& m : matches) {
        if (m.start > prev) parts.push_back({{prev, m.start}, false});
        parts.push_back({m, true});
        prev = m.end;
    }
    if (prev < length || parts.empty()) parts.push_back({{prev, length}, false});
    if (invert)
        for (auto& p : parts) p.is_match = !p.is_match;

    std::vector<MatchRange> out;
    out.reserve(parts.size());
    switch (behavior) {
        case SplitBehavior::isolated:
            for (const auto& p : parts) out.push_back(p.range);
            break;
        case SplitBehavior::removed:
            for (const auto& p : parts)
                if (!p.is_match) out.push_back(p.range);
            break;
        case SplitBehavior::merged_with_previous: {
            bool previous_match = false;
            for (const auto& p : parts) {
                if (p.is_match && !previous_match && !out.empty())
                    out.back().end = p.range.end;
                else
                    out.push_back(p.range);
                previous_match = p.is_match;
            }
            break;
        }
        case SplitBehavior::merged_with_next: {
            bool previous_match = false;
            for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
                if (it->is_match && !previous_match && !out.empty())
                    out.back().start = it->range.start;
                else
                    out.push_back(it->range);
                previous_match = it->is_match;
            }
            std::reverse(out.begin(), out.end());
            break;
        }
        case SplitBehavior::contiguous: {
            bool previous_match = false;
            for (std::size_t i = 0; i < parts.size(); ++i) {
                if (i > 0 && parts[i].is_match == previous_match)
                    out.back().end = parts[i].range.end;
                else
                    out.push_back(parts[i].range);
                previous_match = parts[i].is_match;
            }
            break;
        }
    }
    std::erase_if(out, [](const MatchRange& r) { return r.end == r.start; });
    return out;
}

PreTokenizerPtr parse_pre_tokenizer(const JsonView& json) {
    if (json.is_null()) return nullptr;
    const auto& type = json.at("type").as_string();
    if (type == "Split")
        return std::make_unique<Split>(parse_pattern(json.at("pattern")), parse_behavior(json.at("behavior")),
                                       json.get_bool("invert", false));
    if (type == "ByteLevel") {
        std::unique_ptr<Regex> regex;
        if (json.get_bool("use_regex", true))
            regex = std::make_unique<Regex>(compile_or_throw(gpt2_pattern, json.path() + ".use_regex"));
        return std::make_unique<ByteLevel>(json.get_bool("add_prefix_space", true), std::move(regex));
    }
    if (type == "Metaspace") {
        PrependScheme scheme = json.get_bool("add_prefix_space", true) ? PrependScheme::always : PrependScheme::never;
        if (json.has("prepend_scheme") && !json.at("prepend_scheme").is_null()) {
            const auto s = json.at("prepend_scheme");
            if (s.as_string() == "always")
                scheme = PrependScheme::always;
            else if (s.as_string() == "first")
                scheme = PrependScheme::first;
            else if (s.as_string() == "never")
                scheme = PrependScheme::never;
            else
                s.fail("unknown prepend_scheme \"" + s.as_string() + "\" (always, first or never)");
        }
        const auto replacement = json.at("replacement").as_string();
        if (replacement.empty()) json.at("replacement").fail("must not be empty");
        return std::make_unique<Metaspace>(replacement, scheme, json.get_bool("split", true));
    }
    if (type == "Digits")
        return std::make_unique<Digits>(json.get_bool("individual_digits", false),
                                        compile_or_throw(R"(\p{N})", json.path()));
    if (type == "Sequence") {
        const auto list = json.at("pretokenizers");
        if (!list.is_array()) list.expected("an array");
        std::vector<PreTokenizerPtr> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step = parse_pre_tokenizer(list.item(i));
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<Sequence>(std::move(steps));
    }
    json.at("type").fail("unsupported pre-tokenizer type \"" + type +
                         "\" (supported: Split, ByteLevel, Metaspace, Digits, Sequence)");
}

}  // namespace tokenizer
