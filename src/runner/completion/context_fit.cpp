#include "runner/completion/context_fit.h"

#include <algorithm>

namespace runner {

FittedPrompt fit_to_context(std::span<const std::int32_t> prompt, int n_ctx, int n_keep) {
    const int keep = std::clamp(n_keep, 0, n_ctx - 1);
    const int limit = n_ctx - std::max((n_ctx - keep) / 2, 1);
    FittedPrompt fitted;
    fitted.kept = static_cast<std::size_t>(keep);
    fitted.dropped = prompt.size() - static_cast<std::size_t>(limit);
    fitted.ids.assign(prompt.begin(), prompt.begin() + keep);
    fitted.ids.insert(fitted.ids.end(), prompt.begin() + keep + static_cast<long>(fitted.dropped), prompt.end());
    return fitted;
}

}  // namespace runner
