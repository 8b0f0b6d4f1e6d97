#include "runner/completion/format_constraint.h"

#include <algorithm>
#include <limits>

namespace runner {

FormatConstraint::FormatConstraint(const grammar::Grammar& grammar, const tokenizer::Tokenizer& tok,
                                   std::vector<std::int32_t> eos_ids)
    : matcher_(grammar), pieces_(&tok.pieces()), eos_(std::move(eos_ids)) {}

bool FormatConstraint::is_eos(std::int32_t id) const { return std::find(eos_.begin(), eos_.end(), id) != eos_.end(); }

bool FormatConstraint::allows(std::int32_t id) const {
    if (is_eos(id)) return matcher_.complete();
    const auto i = static_cast<std::size_t>(id);
    return id >= 0 && i < pieces_->size() && (*pieces_)[i] && matcher_.allows(*(*pieces_)[i]);
}

void FormatConstraint::mask(std::span<float> logits) const {
    // Most tokens fail on their first byte; the full check runs only for the rest.
    const std::vector<bool> first = matcher_.first_bytes();
    bool any = false;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        const auto id = static_cast<std::int32_t>(i);
        bool allowed = false;
        if (is_eos(id)) {
            allowed = matcher_.complete();
        } else if (i < pieces_->size() && (*pieces_)[i]) {
            const std::string& piece = *(*pieces_)[i];
            allowed = first[static_cast<std::uint8_t>(piece.front())] && matcher_.allows(piece);
        }
        if (!allowed) logits[i] = -std::numeric_limits<float>::infinity();
        any = any || allowed;
    }
    if (!any)
        for (const std::int32_t id : eos_)
            if (static_cast<std::size_t>(id) < logits.size()) logits[static_cast<std::size_t>(id)] = 0;
}

void FormatConstraint::accept(std::int32_t id) {
    if (is_eos(id)) return;
    const auto i = static_cast<std::size_t>(id);
    if (i < pieces_->size() && (*pieces_)[i]) matcher_.accept(*(*pieces_)[i]);
}

}  // namespace runner
