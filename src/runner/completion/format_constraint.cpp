#include "runner/completion/format_constraint.h"

#include <algorithm>
#include <limits>

namespace runner {

FormatConstraint::FormatConstraint(const grammar::Grammar& grammar, const tokenizer::Tokenizer& tok,
                                   std::vector<std::int32_t> eos_ids)
    : matcher_(grammar), pieces_(&tok.pieces()), eos_(std::move(eos_ids)) {}

bool FormatConstraint::is_eos(std::int32_t id) const { return std::find(eos_.begin(), eos_.end(), id) != eos_.end(); }

const std::string* FormatConstraint::piece(std::int32_t id) const {
    const auto i = static_cast<std::size_t>(id);
    return id >= 0 && i < pieces_->size() && (*pieces_)[i] ? &*(*pieces_)[i] : nullptr;
}

bool FormatConstraint::allows(std::int32_t id) const {
    if (is_eos(id)) return matcher_.complete();
    const std::string* p = piece(id);
    return p && matcher_.allows(*p);
}

// Every token's verdict in the matcher's state.
FormatConstraint::StateMask FormatConstraint::mask_now(std::size_t n_tokens) const {
    StateMask m{matcher_.state(), n_tokens, std::vector<std::uint64_t>((n_tokens + 63) / 64), true};
    // Most tokens fail on their first byte, which a bit vector answers faster than the automaton's walk.
    const std::vector<bool> first = matcher_.first_bytes();
    for (std::size_t i = 0; i < n_tokens; ++i) {
        const auto id = static_cast<std::int32_t>(i);
        const std::string* p = piece(id);
        const bool ok =
            is_eos(id) ? matcher_.complete() : p && first[static_cast<std::uint8_t>(p->front())] && matcher_.allows(*p);
        if (ok) m.allowed[i / 64] |= std::uint64_t{1} << (i % 64), m.stuck = false;
    }
    return m;
}

void FormatConstraint::mask(std::span<float> logits) const {
    constexpr std::size_t kept_states = 32;  // 19 KB each at a 152k vocabulary
    const int state = matcher_.state();
    auto hit = std::find_if(masks_.begin(), masks_.end(),
                            [&](const StateMask& m) { return m.state == state && m.n_tokens == logits.size(); });
    if (hit == masks_.end()) {
        if (masks_.size() == kept_states) masks_.erase(masks_.begin());
        masks_.push_back(mask_now(logits.size()));
    } else {
        std::rotate(hit, hit + 1, masks_.end());
    }
    const StateMask& m = masks_.back();
    for (std::size_t w = 0; w < m.allowed.size(); ++w) {
        if (m.allowed[w] == ~std::uint64_t{0}) continue;
        const std::size_t end = std::min(logits.size(), 64 * w + 64);
        for (std::size_t i = 64 * w; i < end; ++i)
            if (!(m.allowed[w] >> (i % 64) & 1)) logits[i] = -std::numeric_limits<float>::infinity();
    }
    if (m.stuck)
        for (const std::int32_t id : eos_)
            if (static_cast<std::size_t>(id) < logits.size()) logits[static_cast<std::size_t>(id)] = 0;
}

void FormatConstraint::accept(std::int32_t id) {
    if (const std::string* p = is_eos(id) ? nullptr : piece(id)) matcher_.accept(*p);
}

}  // namespace runner
