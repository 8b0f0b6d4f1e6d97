#include "runner/tokenizer/spm_merges.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>

namespace tokenizer {

namespace {

constexpr std::int64_t type_normal = 1, type_user_defined = 4;

}  // namespace

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
        if (types[id] != type_normal && types[id] != type_user_defined) continue;
        const std::string& piece = pieces[id];
        for (std::size_t at = 1; at < piece.size(); ++at) {
            if ((static_cast<unsigned char>(piece[at]) & 0xC0) == 0x80) continue;  // inside a character
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
