#include "runner/completion/grammar.h"

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>

namespace runner::grammar {

namespace {

constexpr int end_of_sequence = -2;
// A parse's stack deeper than this ends it: JSON nested some hundreds of levels. Keeps a state's size, and so
// the automaton's memory, bounded by what a model could write.
constexpr std::size_t most_places = 1024;
// More parses than this at once, or more stacks made for one byte, is a grammar whose alternatives multiply
// with nesting: an error, not a matcher that runs out of memory or time.
constexpr std::size_t most_parses = 4096, most_expansions = std::size_t{1} << 17;

bool takes(const Symbol& s, std::uint8_t b) {
    return std::any_of(s.ranges.begin(), s.ranges.end(), [b](const auto& r) { return r.first <= b && b <= r.second; });
}

}  // namespace

Symbol bytes(std::vector<std::pair<std::uint8_t, std::uint8_t>> ranges, bool negate) {
    if (!negate) return Symbol{std::move(ranges), -1};
    std::sort(ranges.begin(), ranges.end());
    Symbol s;
    int next = 0;  // the lowest byte not yet known to be excluded
    for (const auto& [lo, hi] : ranges) {
        if (lo > next) s.ranges.emplace_back(static_cast<std::uint8_t>(next), static_cast<std::uint8_t>(lo - 1));
        next = std::max(next, hi + 1);
    }
    if (next <= 255) s.ranges.emplace_back(static_cast<std::uint8_t>(next), std::uint8_t{255});
    return s;
}

Symbol byte(char c) {
    const auto b = static_cast<std::uint8_t>(c);
    return Symbol{{{b, b}}, -1};
}

Symbol ref(int rule) { return Symbol{{}, rule}; }

Sequence literal(std::string_view text) {
    Sequence s;
    for (const char c : text) s.push_back(byte(c));
    return s;
}

Sequence operator+(Sequence a, const Sequence& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

int Grammar::add_rule() {
    rules_.emplace_back();
    return static_cast<int>(rules_.size()) - 1;
}

void Grammar::add_alternative(int rule, Sequence sequence) {
    rules_.at(static_cast<std::size_t>(rule)).push_back(std::move(sequence));
}

int Grammar::add_rule(std::vector<Sequence> alternatives) {
    const int rule = add_rule();
    for (auto& a : alternatives) add_alternative(rule, std::move(a));
    return rule;
}

bool Grammar::left_recursive() const {
    // Which rules can match nothing, to a fixed point.
    std::vector<bool> nullable(rules_.size(), false);
    for (bool changed = true; changed;) {
        changed = false;
        for (std::size_t r = 0; r < rules_.size(); ++r) {
            if (nullable[r]) continue;
            for (const auto& sequence : rules_[r]) {
                if (std::all_of(sequence.begin(), sequence.end(), [&](const Symbol& s) {
                        return s.rule >= 0 && nullable[static_cast<std::size_t>(s.rule)];
                    })) {
                    nullable[r] = changed = true;
                    break;
                }
            }
        }
    }
    // The rules each rule may start with: those its sequences reference before their first byte set or
    // first rule that must take a byte.
    std::vector<std::vector<int>> starts_with(rules_.size());
    for (std::size_t r = 0; r < rules_.size(); ++r)
        for (const auto& sequence : rules_[r])
            for (const auto& s : sequence) {
                if (s.rule < 0) break;
                starts_with[r].push_back(s.rule);
                if (!nullable[static_cast<std::size_t>(s.rule)]) break;
            }
    // A cycle among those edges, by depth-first search (0 unseen, 1 on the path, 2 done).
    std::vector<int> mark(rules_.size(), 0);
    const auto cycle = [&](auto& self, int r) -> bool {
        auto& m = mark[static_cast<std::size_t>(r)];
        if (m != 0) return m == 1;
        m = 1;
        for (const int next : starts_with[static_cast<std::size_t>(r)])
            if (self(self, next)) return true;
        m = 2;
        return false;
    };
    for (std::size_t r = 0; r < rules_.size(); ++r)
        if (cycle(cycle, static_cast<int>(r))) return true;
    return false;
}

Grammar::Flat Grammar::flatten() const {
    if (left_recursive()) throw std::logic_error("grammar: a rule reaches itself before taking a byte");
    Flat flat;
    flat.starts.resize(rules_.size());
    for (std::size_t r = 0; r < rules_.size(); ++r) {
        if (rules_[r].empty()) throw std::logic_error("grammar rule " + std::to_string(r) + " has no alternatives");
        for (const auto& sequence : rules_[r]) {
            flat.starts[r].push_back(static_cast<int>(flat.symbols.size()));
            for (const auto& s : sequence) {
                if (s.rule >= static_cast<int>(rules_.size())) throw std::logic_error("grammar: reference to no rule");
                flat.symbols.push_back(s);
            }
            flat.symbols.push_back(Symbol{{}, end_of_sequence});
        }
    }
    return flat;
}

struct Matcher::Automaton {
    using Stack = std::vector<int>;  // places in flat.symbols; the top is the next symbol to match
    static constexpr int unknown = -2, dead = -1;

    Grammar::Flat flat;
    std::vector<std::vector<Stack>> states;  // each stack ends at a byte set, or is empty (the sentence may end)
    std::map<std::vector<Stack>, int> numbers;
    std::vector<std::array<int, 256>> moves;  // [state][byte]: the next state, dead, or not yet known

    explicit Automaton(Grammar::Flat f) : flat(std::move(f)) {}

    int number(std::vector<Stack> stacks) {
        std::sort(stacks.begin(), stacks.end());
        stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
        if (stacks.size() > most_parses) throw too_ambiguous();
        const auto [at, added] = numbers.try_emplace(stacks, static_cast<int>(states.size()));
        if (added) {
            states.push_back(std::move(stacks));
            moves.emplace_back().fill(unknown);
        }
        return at->second;
    }

    static AmbiguityError too_ambiguous() {
        return AmbiguityError(
            "format: the schema's alternatives leave too many ways to read the answer at once "
            "(anyOf branches that begin alike, nested); tell them apart early, or use "
            "AIRLLM_GGUF=off for llama-server");
    }

    // Follows references and finished sequences until the stack's top is a byte set or the stack is empty.
    // `work` counts the stacks made for one move, which alternatives that begin alike multiply.
    void expand(Stack stack, std::vector<Stack>& out, std::size_t& work) const {
        if (++work > most_expansions) throw too_ambiguous();
        while (!stack.empty() && flat.symbols[static_cast<std::size_t>(stack.back())].rule == end_of_sequence)
            stack.pop_back();
        if (stack.empty() || flat.symbols[static_cast<std::size_t>(stack.back())].rule < 0) {
            out.push_back(std::move(stack));
            return;
        }
        const int place = stack.back();
        const int rule = flat.symbols[static_cast<std::size_t>(place)].rule;
        // Where the sequence goes on once the rule is matched; nothing, when the rule ends it (a tail call),
        // so that a repetition (ε | item tail) keeps its stack's height and meets the same states again.
        stack.back() = place + 1;
        if (flat.symbols[static_cast<std::size_t>(place + 1)].rule == end_of_sequence) stack.pop_back();
        if (stack.size() >= most_places) return;  // nested deeper than a format follows: this parse ends
        for (const int start : flat.starts[static_cast<std::size_t>(rule)]) {
            Stack next = stack;
            next.push_back(start);
            expand(std::move(next), out, work);
        }
    }

    int move(int state, std::uint8_t b) {
        int& known = moves[static_cast<std::size_t>(state)][b];
        if (known != unknown) return known;
        std::vector<Stack> next;
        std::size_t work = 0;
        for (const auto& stack : states[static_cast<std::size_t>(state)]) {
            if (stack.empty() || !takes(flat.symbols[static_cast<std::size_t>(stack.back())], b)) continue;
            Stack moved = stack;
            ++moved.back();
            expand(std::move(moved), next, work);
        }
        const int to = next.empty() ? dead : number(std::move(next));
        moves[static_cast<std::size_t>(state)][b] = to;  // `known` may dangle: number() can grow `moves`
        return to;
    }
};

Matcher::Matcher(const Grammar& grammar) : automaton_(std::make_shared<Automaton>(grammar.flatten())) {
    std::vector<Automaton::Stack> start;
    std::size_t work = 0;
    for (const int place : automaton_->flat.starts.at(static_cast<std::size_t>(grammar.root())))
        automaton_->expand({place}, start, work);
    state_ = automaton_->number(std::move(start));
}

int Matcher::walk(int state, std::string_view text) const {
    for (const char c : text) {
        state = automaton_->move(state, static_cast<std::uint8_t>(c));
        if (state == Automaton::dead) return Automaton::dead;
    }
    return state;
}

bool Matcher::accept(std::string_view text) {
    const int to = walk(state_, text);
    if (to == Automaton::dead) return false;
    state_ = to;
    return true;
}

bool Matcher::allows(std::string_view text) const { return walk(state_, text) != Automaton::dead; }

bool Matcher::complete() const {
    const auto& stacks = automaton_->states[static_cast<std::size_t>(state_)];
    return std::any_of(stacks.begin(), stacks.end(), [](const Automaton::Stack& s) { return s.empty(); });
}

std::size_t Matcher::states() const { return automaton_->states.size(); }

std::vector<bool> Matcher::first_bytes() const {
    std::vector<bool> first(256, false);
    for (int b = 0; b < 256; ++b) {
        const char c = static_cast<char>(b);
        first[static_cast<std::size_t>(b)] = walk(state_, {&c, 1}) != Automaton::dead;
    }
    return first;
}

}  // namespace runner::grammar
