#include "runner/tokenizer/stream_decoder.h"

#include "runner/tokenizer/utf8.h"

namespace tokenizer {

namespace {
bool ends_incomplete(const std::string& text) {
    return text.size() >= replacement_character.size() &&
           text.compare(text.size() - replacement_character.size(), replacement_character.size(),
                        replacement_character) == 0;
}
}  // namespace

common::Result<std::string> StreamDecoder::push(TokenId id) {
    window_.push_back(id);
    auto text = tokenizer_->decode(window_, skip_special_);
    if (!text) {
        window_.pop_back();
        return text.error();
    }
    if (text->size() <= prefix_.size() || ends_incomplete(*text)) return std::string();
    std::string fresh;
    if (text->compare(0, prefix_.size(), prefix_) == 0) {
        fresh = text->substr(prefix_.size());
    } else {
        auto pending = pending_text();  // the decoders rewrote the context: emit the new tokens alone
        if (!pending) return pending.error();
        fresh = std::move(pending).value();
    }
    // Keep context for the next step, starting at the newest token that decodes cleanly on its own:
    // decoders treat the first token specially (Strip, Metaspace), and a byte token in the middle of
    // a character would turn the whole byte run into U+FFFD (ByteFallback) if it led the window.
    std::size_t keep_from = window_.size() - 1;
    while (keep_from > 0) {
        const auto alone = tokenizer_->decode(std::span(&window_[keep_from], 1), skip_special_);
        if (alone.ok() && alone->find(replacement_character) == std::string::npos) break;
        --keep_from;
    }
    window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(keep_from));
    context_ = window_.size();
    auto prefix = tokenizer_->decode(window_, skip_special_);
    if (!prefix) return prefix.error();
    prefix_ = std::move(prefix).value();
    return fresh;
}

common::Result<std::string> StreamDecoder::pending_text() const {
    return tokenizer_->decode(std::span(window_).subspan(context_), skip_special_);
}

common::Result<std::string> StreamDecoder::flush() {
    std::string rest;
    if (window_.size() > context_) {
        auto text = tokenizer_->decode(window_, skip_special_);
        if (!text) return text.error();
        if (text->compare(0, prefix_.size(), prefix_) == 0) {
            rest = text->substr(prefix_.size());
        } else {
            // A <0xNN> run that ends incomplete turns wholly into U+FFFD (ByteFallback), taking the
            // context's bytes with it: the pending tokens alone give what is left to say.
            auto pending = pending_text();
            if (!pending) return pending.error();
            rest = std::move(pending).value();
        }
    }
    window_.clear();
    context_ = 0;
    prefix_.clear();
    return rest;
}

}  // namespace tokenizer
