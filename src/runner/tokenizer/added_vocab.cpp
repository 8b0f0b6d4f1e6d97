#include "runner/tokenizer/added_vocab.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "runner/tokenizer/utf8.h"

namespace tokenizer {

// A byte trie; each node's children sit in a small sorted list, the root's in a table.
class AddedVocabulary::Trie {
  public:
    Trie() : nodes_(1) { root_.fill(-1); }

    void insert(std::string_view key, std::size_t token_index) {
        if (key.empty()) return;
        int node = root_[static_cast<unsigned char>(key[0])];
        if (node < 0) {
            node = new_node();
            root_[static_cast<unsigned char>(key[0])] = node;
        }
        for (std::size_t i = 1; i < key.size(); ++i) node = child(node, static_cast<unsigned char>(key[i]), true);
        if (!nodes_[static_cast<std::size_t>(node)].token) nodes_[static_cast<std::size_t>(node)].token = token_index;
    }

    bool empty() const { return nodes_.size() == 1; }

    // Longest key starting at text[pos]: (length, token index), or length 0.
    std::pair<std::size_t, std::size_t> longest(std::string_view text, std::size_t pos) const {
        int node = root_[static_cast<unsigned char>(text[pos])];
        std::pair<std::size_t, std::size_t> best{0, 0};
        std::size_t i = pos + 1;
        while (node >= 0) {
            const auto& n = nodes_[static_cast<std::size_t>(node)];
            if (n.token) best = {i - pos, *n.token};
            if (i >= text.size()) break;
            node = find_child(node, static_cast<unsigned char>(text[i]));
            ++i;
        }
        return best;
    }

  private:
    struct Node {
        std::vector<std::pair<unsigned char, int>> children;
        std::optional<std::size_t> token;
    };

    int new_node() {
        nodes_.emplace_back();
        return static_cast<int>(nodes_.size() - 1);
    }

    int find_child(int node, unsigned char byte) const {
        const auto& kids = nodes_[static_cast<std::size_t>(node)].children;
        const auto it = std::lower_bound(kids.begin(), kids.end(), byte,
                                         [](const auto& kid, unsigned char b) { return kid.first < b; });
        return it != kids.end() && it->first == byte ? it->second : -1;
    }

    int child(int node, unsigned char byte, bool create) {
        auto& kids = nodes_[static_cast<std::size_t>(node)].children;
        const auto it = std::lower_bound(kids.begin(), kids.end(), byte,
                                         [](const auto& kid, unsigned char b) { return kid.first < b; });
        if (it != kids.end() && it->first == byte) return it->second;
        if (!create) return -1;
        const int fresh = new_node();
        // new_node may have moved nodes_: look the list up again.
        auto& list = nodes_[static_cast<std::size_t>(node)].children;
        list.insert(std::lower_bound(list.begin(), list.end(), byte,
                                     [](const auto& kid, unsigned char b) { return kid.first < b; }),
                    {byte, fresh});
        return fresh;
    }

    std::array<int, 256> root_{};
    std::vector<Node> nodes_;
};

namespace {

bool is_word_char(char32_t c) {
    return c == U'_' || u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) ||
           (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool is_space(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE) != 0; }

// The code point that ends at `end` (text valid UTF-8, end > 0).
char32_t last_char(std::string_view text, std::size_t end, std::size_t* start_out = nullptr) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (start_out) *start_out = start;
    std::size_t pos = start;
    return utf8_next(text, pos);
}

}  // namespace

AddedVocabulary::AddedVocabulary() : raw_trie_(std::make_unique<Trie>()), normalized_trie_(std::make_unique<Trie>()) {}
AddedVocabulary::AddedVocabulary(AddedVocabulary&&) noexcept = default;
AddedVocabulary& AddedVocabulary::operator=(AddedVocabulary&&) noexcept = default;
AddedVocabulary::~AddedVocabulary() = default;

AddedVocabulary AddedVocabulary::parse(const JsonView& list, const Normalizer* normalizer) {
    AddedVocabulary vocab;
    if (list.is_null()) return vocab;
    if (!list.is_array()) list.expected("an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto item = list.item(i);
        AddedToken t;
        const auto id = item.at("id").as_int();
        if (id < 0 || id > 0x7FFFFFFF) item.at("id").fail("token id " + std::to_string(id) + " out of range");
        t.id = static_cast<TokenId>(id);
        t.content = item.at("content").as_string();
        if (t.content.empty()) item.at("content").fail("an added token must not be empty");
        t.special = item.get_bool("special", false);
        t.lstrip = item.get_bool("lstrip", false);
        t.rstrip = item.get_bool("rstrip", false);
        t.single_word = item.get_bool("single_word", false);
        t.normalized = item.get_bool("normalized", !t.special);
        const std::size_t index = vocab.tokens_.size();
        vocab.by_content_.try_emplace(t.content, index);
        vocab.by_id_.try_emplace(t.id, index);
        if (t.normalized) {
            std::string key = t.content;
            if (normalizer) normalizer->normalize(key);
            vocab.normalized_trie_->insert(key, index);
        } else {
            vocab.raw_trie_->insert(t.content, index);
        }
        vocab.tokens_.push_back(std::move(t));
    }
    return vocab;
}

const AddedToken* AddedVocabulary::by_id(TokenId id) const {
    const auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
    const auto it = by_content_.find(content);
    return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split(std::string_view text, bool normalized, std::vector<Segment>& out) const {
    const Trie& trie = normalized ? *normalized_trie_ : *raw_trie_;
    std::size_t covered = 0;  // end of the last token (after rstrip)
    if (!trie.empty()) {
        std::size_t search = 0;
        while (search < text.size()) {
            // Leftmost match, then the longest there (aho-corasick's LeftmostLongest).
            std::size_t start = search, length = 0, index = 0;
            for (; start < text.size(); ++start) {
                std::tie(length, index) = trie.longest(text, start);
                if (length > 0) break;
            }
            if (length == 0) break;
            std::size_t stop = start + length;
            search = stop;
            const AddedToken& token = tokens_[index];
            if (start < covered) continue;  // inside the whitespace an rstrip took
            if (token.single_word) {
                const bool word_before = start > 0 && is_word_char(last_char(text, start));
                std::size_t after = stop;
                const bool word_after = stop < text.size() && is_word_char(utf8_next(text, after));
                if (word_before || word_after) continue;
            }
            if (token.lstrip) {
                std::size_t s = start;
                while (s > covered) {
                    std::size_t prev_start = 0;
                    if (!is_space(last_char(text, s, &prev_start))) break;
                    s = prev_start;
                }
                start = s;
            }
            if (token.rstrip) {
                while (stop < text.size()) {
                    std::size_t next = stop;
                    if (!is_space(utf8_next(text, next))) break;
                    stop = next;
                }
                search = std::max(search, stop);
            }
            if (covered < start) out.push_back({covered, start, -1});
            out.push_back({start, stop, token.id});
            covered = stop;
        }
    }
    if (covered < text.size()) out.push_back({covered, text.size(), -1});
}

}  // namespace tokenizer
