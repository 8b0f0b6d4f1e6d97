#include "runner/completion/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace runner {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    std::erase(stops_, std::string());
    for (const auto& s : stops_) hold_ = std::max(hold_, s.size() - 1);
}

std::string StopMatcher::push(const std::string& piece) {
    pending_ += piece;
    // The earliest stop string in the text, whichever of them it is.
    auto first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
        pending_.erase(first);
        stopped_ = true;
        return std::exchange(pending_, {});
    }
    if (pending_.size() <= hold_) return {};
    // Never split a UTF-8 character when holding back the tail.
    std::size_t cut = pending_.size() - hold_;
    while (cut > 0 && (static_cast<unsigned char>(pending_[cut]) & 0xC0) == 0x80) --cut;
    std::string out = pending_.substr(0, cut);
    pending_.erase(0, cut);
    return out;
}

std::string StopMatcher::flush() { return std::exchange(pending_, {}); }

}  // namespace runner
