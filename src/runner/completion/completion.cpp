#include "runner/completion/completion.h"

#include <limits>
#include <optional>
#include <utility>

#include "runner/completion/format_constraint.h"
#include "runner/completion/stop_matcher.h"
#include "runner/engine/generate.h"
#include "runner/tokenizer/stream_decoder.h"

namespace runner {

const char* finish_name(Finish finish) {
    switch (finish) {
        case Finish::length: return "length";
        case Finish::context: return "context";
        case Finish::eos:
        case Finish::stop_string:
        case Finish::client_left: return "stop";
    }
    return "stop";
}

common::Result<CompletionOutcome> complete(KvSequence& sequence, const tokenizer::Tokenizer* tok,
                                           std::span<const std::int32_t> prompt, const CompletionParams& params,
                                           const PieceFn& on_piece) {
    std::optional<tokenizer::StreamDecoder> decoder;
    if (tok) decoder.emplace(*tok);
    StopMatcher stops(tok ? params.stop : std::vector<std::string>{});
    std::optional<common::Error> failure;
    bool client_left = false;
    std::vector<Logprob> logprobs;  // of the tokens whose text has not gone out yet
    // Text that is ready goes out with the log-probabilities so far; false when it cannot (the reader left).
    const auto send = [&](const std::string& text) {
        if (text.empty()) return true;
        if (on_piece(Piece{text, std::exchange(logprobs, {})})) return true;
        client_left = true;
        return false;
    };

    const auto& eos_ids = sequence.model().config().eos_ids;
    std::optional<FormatConstraint> format;
    if (params.format) {
        if (!tok) return common::make_error("a format needs the model's tokenizer to constrain its output");
        if (eos_ids.empty()) return common::make_error("a format needs the model's end-of-text token, and it has none");
        try {
            format.emplace(*params.format, *tok, eos_ids);
        } catch (const grammar::AmbiguityError& e) {
            return common::make_error(e.what());
        }
    }
    Sampler sampler(params.sampling, format ? &*format : nullptr);
    const int n_predict = params.num_predict < 0 ? std::numeric_limits<int>::max() : params.num_predict;
    // A token's text beside its log-probability: as it continues the answer (a SentencePiece word keeps its
    // space), else decoded alone.
    const auto text_of = [&](std::int32_t id) {
        const auto& pieces = tok->pieces();
        if (static_cast<std::size_t>(id) < pieces.size() && pieces[static_cast<std::size_t>(id)])
            return *pieces[static_cast<std::size_t>(id)];
        auto text = tok->decode(std::span<const std::int32_t>(&id, 1));
        return text ? std::move(*text) : std::string();
    };
    // A format's matcher can meet its grammar's ambiguity only as the answer goes on.
    auto result = [&]() -> common::Result<GenerateResult> {
        try {
            return generate(sequence, prompt, n_predict, sampler, eos_ids, [&](std::int32_t id) {
                if (!decoder) return true;
                if (const auto& step = sampler.last_logprobs()) {
                    Logprob& l = logprobs.emplace_back(Logprob{{text_of(id), step->sampled.logprob}, {}});
                    for (const auto& t : step->top) l.top.push_back({text_of(t.id), t.logprob});
                }
                auto piece = decoder->push(id);
                if (!piece) {
                    failure = piece.error();
                    return false;
                }
                return send(stops.push(*piece)) && !stops.stopped();
            });
        } catch (const grammar::AmbiguityError& e) {
            return common::make_error(e.what());
        }
    }();
    if (!result) return result.error();
    if (failure) return *failure;

    CompletionOutcome outcome;
    outcome.ids = std::move(result->ids);
    outcome.prompt_reused = result->prompt_reused;
    outcome.prompt_tokens = prompt.size() - result->prompt_reused;
    outcome.prompt_seconds = result->prompt_seconds;
    outcome.decode_seconds = result->decode_seconds;
    switch (result->reason) {
        case StopReason::eos: outcome.finish = Finish::eos; break;
        case StopReason::length: outcome.finish = Finish::length; break;
        case StopReason::context: outcome.finish = Finish::context; break;
        case StopReason::callback: outcome.finish = client_left ? Finish::client_left : Finish::stop_string; break;
    }
    // What the decoder and the stop matcher still hold, once the answer ended without a stop string.
    if (decoder && !stops.stopped() && !client_left) {
        auto rest = decoder->flush();
        if (!rest) return rest.error();
        const bool sent = send(stops.push(*rest)) && (stops.stopped() || send(stops.flush()));
        if (!sent)
            outcome.finish = Finish::client_left;
        else if (stops.stopped())
            outcome.finish = Finish::stop_string;
        else if (!logprobs.empty() && !on_piece(Piece{{}, std::move(logprobs)}))
            outcome.finish = Finish::client_left;
    }
    return outcome;
}

}  // namespace runner
