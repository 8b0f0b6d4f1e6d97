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

void FormatConstraint::mask(std::span<float> logits) const {
    // Most tokens fail on their first byte, which a bit vector answers faster than the automaton's walk.
    const std::vector<bool> first = matcher_.first_bytes();
    bool any = false;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        const auto id = static_cast<std::int32_t>(i);
        const std::string* p = piece(id);
        const bool allowed =
            is_eos(id) ? matcher_.complete() : p && first[static_cast<std::uint8_t>(p->front())] && matcher_.allows(*p);
        if (!allowed) logits[i] = -std::numeric_limits<float>::infinity();
        any = any || allowed;
    }
    if (!any)
        for (const std::int32_t id : eos_)
            if (static_cast<std::size_t>(id) < logits.size()) logits[static_cast<std::size_t>(id)] = 0;
}

void FormatConstraint::accept(std::int32_t id) {
    if (const std::string* p = is_eos(id) ? nullptr : piece(id)) matcher_.accept(*p);
}

}  // namespace runner
