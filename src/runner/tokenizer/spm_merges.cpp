#include "runner/tokenizer/spm_merges.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "runner/tokenizer/gguf_token_type.h"
#include "runner/tokenizer/utf8.h"

namespace tokenizer {

std::vector<std::pair<std::string, std::string>> spm_merges(const std::vector<std::string>& pieces,
                                                            const std::vector<double>& scores,
                                                            const std::vector<std::int64_t>& types) {
    std::unordered_map<std::string, std::size_t> id_of;
    id_of.reserve(pieces.size());
    for (std::size_t id = 0; id < pieces.size(); ++id) id_of.try_emplace(pieces[id], id);
    struct Candidate {
        double score;
        std::size_t joined, left, right;
    };
    std::vector<Candidate> candidates;
    for (std::size_t id = 0; id < pieces.size(); ++id) {
        if (types[id] != gguf_token_type::normal && types[id] != gguf_token_type::user_defined) continue;
        const std::string& piece = pieces[id];
        // Every character boundary inside the piece (a vocabulary's pieces are valid UTF-8).
        for (std::size_t at = utf8_length(static_cast<unsigned char>(piece[0])); at < piece.size();
             at += utf8_length(static_cast<unsigned char>(piece[at]))) {
            const auto left = id_of.find(piece.substr(0, at));
            const auto right = id_of.find(piece.substr(at));
            if (left != id_of.end() && right != id_of.end())
                candidates.push_back({scores[id], id, left->second, right->second});
        }
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return std::tie(b.score, a.joined, a.left, a.right) < std::tie(a.score, b.joined, b.left, b.right);
    });
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(candidates.size());
    for (const auto& c : candidates) merges.emplace_back(pieces[c.left], pieces[c.right]);
    return merges;
}

}  // namespace tokenizer
