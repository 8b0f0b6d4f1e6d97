#include "runner/tokenizer/bpe.h"

#include <cstdio>
#include <mutex>
#include <queue>

#include "runner/tokenizer/utf8.h"

namespace tokenizer {

namespace {

constexpr std::size_t cache_max_piece = 256;        // bytes; longer pieces are not cached
constexpr std::size_t cache_max_entries = 1 << 16;  // cleared when full

std::uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

}  // namespace

struct Bpe::Cache {
    std::mutex mutex;
    StringMap<std::vector<TokenId>> entries;
};

Bpe::Bpe() : cache_(std::make_unique<Cache>()) {
    for (auto& id : byte_ids_) id = -1;
}
Bpe::Bpe(Bpe&&) noexcept = default;
Bpe& Bpe::operator=(Bpe&&) noexcept = default;
Bpe::~Bpe() = default;

Bpe Bpe::parse(const JsonView& model) {
    Bpe bpe;
    const auto type = model.find("type");
    if (!type.is_null() && type.as_string() != "BPE")
        type.fail("unsupported model type \"" + type.as_string() + "\" (supported: BPE)");
    if (type.is_null() && !model.has("merges")) model.fail("model has no \"type\" and no \"merges\": not a BPE model");

    const auto dropout = model.find("dropout");
    if (!dropout.is_null()) {
        if (!dropout.raw().is_number()) dropout.expected("a number or null");
        if (dropout.raw().get<double>() != 0.0) dropout.fail("BPE dropout is not supported (it makes encoding random)");
    }

    const auto vocab = model.at("vocab");
    if (!vocab.is_object()) vocab.expected("an object of token → id");
    bpe.vocab_.reserve(vocab.size());
    for (const auto& [token, id_json] : vocab.raw().items()) {
        const JsonView id_view(id_json, vocab.path() + "[\"" + token + "\"]");
        const auto id = id_view.as_int();
        if (id < 0 || id > 0x7FFFFFFF) id_view.fail("token id " + std::to_string(id) + " out of range");
        if (static_cast<std::size_t>(id) >= bpe.id_to_token_.size()) {
            if (static_cast<std::size_t>(id) > vocab.size() * 4 + 1024)
                id_view.fail("token id " + std::to_string(id) + " is far beyond the vocabulary size " +
                             std::to_string(vocab.size()));
            bpe.id_to_token_.resize(static_cast<std::size_t>(id) + 1);
            bpe.id_present_.resize(static_cast<std::size_t>(id) + 1, false);
        }
        bpe.id_to_token_[static_cast<std::size_t>(id)] = token;
        bpe.id_present_[static_cast<std::size_t>(id)] = true;
        bpe.vocab_.emplace(token, static_cast<TokenId>(id));
    }

    const auto lookup = [&](const JsonView& where, const std::string& token, const char* role) {
        const auto it = bpe.vocab_.find(token);
        if (it == bpe.vocab_.end()) where.fail(std::string(role) + " \"" + token + "\" is not in model.vocab");
        return it->second;
    };

    const auto merges = model.find("merges");
    if (!merges.is_null()) {
        if (!merges.is_array()) merges.expected("an array");
        bpe.merges_.reserve(merges.size());
        std::string left, right;
        for (std::size_t i = 0; i < merges.size(); ++i) {
            const auto m = merges.item(i);
            if (m.is_string()) {
                // "left right": exactly one space (tokens never contain a plain space).
                const auto& line = m.as_string();
                const auto space = line.find(' ');
                if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
                    m.fail("expected \"left right\" (two tokens and one space), found \"" + line + "\"");
                left = line.substr(0, space);
                right = line.substr(space + 1);
            } else if (m.is_array() && m.size() == 2) {
                left = m.item(0).as_string();
                right = m.item(1).as_string();
            } else {
                m.expected("a string \"left right\" or a pair of strings");
            }
            const TokenId l = lookup(m, left, "merge token");
            const TokenId r = lookup(m, right, "merge token");
            const TokenId merged = lookup(m, left + right, "merged token");
            bpe.merges_.try_emplace(pair_key(l, r), Merge{static_cast<std::uint32_t>(i), merged});
        }
    }

    const auto unk = model.find("unk_token");
    if (!unk.is_null()) bpe.unk_id_ = lookup(unk, unk.as_string(), "unk_token");
    bpe.continuing_subword_prefix_ = model.get_string("continuing_subword_prefix", "");
    bpe.end_of_word_suffix_ = model.get_string("end_of_word_suffix", "");
    bpe.fuse_unk_ = model.get_bool("fuse_unk", false);
    bpe.byte_fallback_ = model.get_bool("byte_fallback", false);
    bpe.ignore_merges_ = model.get_bool("ignore_merges", false);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        if (const auto it = bpe.vocab_.find(std::string_view(name)); it != bpe.vocab_.end())
            bpe.byte_ids_[b] = it->second;
    }
    return bpe;
}

std::optional<TokenId> Bpe::token_to_id(std::string_view token) const {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

const std::string* Bpe::id_to_token(TokenId id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || !id_present_[static_cast<std::size_t>(id)])
        return nullptr;
    return &id_to_token_[static_cast<std::size_t>(id)];
}

void Bpe::encode(std::string_view piece, std::vector<TokenId>& out) const {
    if (piece.empty()) return;
    if (ignore_merges_) {
        if (const auto it = vocab_.find(piece); it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    if (piece.size() > cache_max_piece) {
        encode_uncached(piece, out);
        return;
    }
    {
        std::lock_guard lock(cache_->mutex);
        if (const auto it = cache_->entries.find(piece); it != cache_->entries.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const std::size_t mark = out.size();
    encode_uncached(piece, out);
    std::lock_guard lock(cache_->mutex);
    if (cache_->entries.size() >= cache_max_entries) cache_->entries.clear();
    cache_->entries.emplace(std::string(piece),
                            std::vector<TokenId>(out.begin() + static_cast<std::ptrdiff_t>(mark), out.end()));
}

void Bpe::encode_uncached(std::string_view piece, std::vector<TokenId>& out) const {
    struct Symbol {
        TokenId id;
        int prev;
        int next;
        bool removed;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(piece.size());
    const auto add = [&](TokenId id) {
        const int index = static_cast<int>(symbols.size());
        if (index > 0) symbols.back().next = index;
        symbols.push_back({id, index - 1, -1, false});
    };

    // 1. Characters → initial symbols (with unk fusing and byte fallback, as merge_word does).
    TokenId pending_unk = -1;  // an unk waiting to be fused with the next unknown character
    std::string with_affixes;
    std::size_t pos = 0;
    while (pos < piece.size()) {
        const std::size_t start = pos;
        pos += utf8_length(static_cast<unsigned char>(piece[pos]));
        if (pos > piece.size()) pos = piece.size();
        std::string_view ch = piece.substr(start, pos - start);
        if ((start > 0 && !continuing_subword_prefix_.empty()) ||
            (pos == piece.size() && !end_of_word_suffix_.empty())) {
            with_affixes.clear();
            if (start > 0) with_affixes += continuing_subword_prefix_;
            with_affixes += ch;
            if (pos == piece.size()) with_affixes += end_of_word_suffix_;
            ch = with_affixes;
        }
        if (const auto it = vocab_.find(ch); it != vocab_.end()) {
            if (pending_unk >= 0) {
                add(pending_unk);
                pending_unk = -1;
            }
            add(it->second);
            continue;
        }
        if (byte_fallback_) {
            bool all = true;
            for (const char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
            if (all) {
                // Hugging Face adds byte tokens without flushing a pending unk first; keep that order.
                for (const char c : ch) add(byte_ids_[static_cast<unsigned char>(c)]);
                continue;
            }
        }
        if (unk_id_) {
            if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
            pending_unk = *unk_id_;
        }
    }
    if (pending_unk >= 0) add(pending_unk);

    // 2. Merge the lowest-ranked pair (leftmost on ties) until none is left.
    struct Candidate {
        std::uint32_t rank;
        int pos;
        TokenId new_id;
        bool operator<(const Candidate& o) const {  // priority_queue pops the largest: invert
            return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
    };
    std::priority_queue<Candidate> queue;
    const auto find_merge = [&](TokenId l, TokenId r) -> const Merge* {
        const auto it = merges_.find(pair_key(l, r));
        return it == merges_.end() ? nullptr : &it->second;
    };
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
        if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id))
            queue.push({m->rank, static_cast<int>(i), m->new_id});
    while (!queue.empty()) {
        const Candidate top = queue.top();
        queue.pop();
        Symbol& left = symbols[static_cast<std::size_t>(top.pos)];
        if (left.removed || left.next < 0) continue;
        Symbol& right = symbols[static_cast<std::size_t>(left.next)];
        const Merge* current = find_merge(left.id, right.id);
        if (current == nullptr || current->new_id != top.new_id) continue;  // stale entry
        left.id = top.new_id;
        right.removed = true;
        left.next = right.next;
        if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;
        if (left.prev >= 0)
            if (const Merge* m = find_merge(symbols[static_cast<std::size_t>(left.prev)].id, left.id))
                queue.push({m->rank, left.prev, m->new_id});
        if (left.next >= 0)
            if (const Merge* m = find_merge(left.id, symbols[static_cast<std::size_t>(left.next)].id))
                queue.push({m->rank, top.pos, m->new_id});
    }
    for (const auto& s : symbols)
        if (!s.removed) out.push_back(s.id);
}

}  // namespace tokenizer
