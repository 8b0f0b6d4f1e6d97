// A context-free grammar over bytes, and a matcher that follows every parse a prefix of output allows,
// for constrained decoding (structured outputs). The idea is llama.cpp's grammar sampler: each parse is a
// stack of places in the grammar's sequences; a byte moves every stack whose next symbol takes it and
// drops the others. The grammars come from json_schema_grammar, which writes no left recursion.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace runner::grammar {

// One symbol of a sequence: a set of bytes, or another rule.
struct Symbol {
    std::vector<std::pair<std::uint8_t, std::uint8_t>> ranges;  // inclusive; the bytes a set takes
    int rule = -1;                                              // >= 0: a reference to that rule
};
using Sequence = std::vector<Symbol>;

// The bytes in `ranges`; with `negate`, every byte outside them.
Symbol bytes(std::vector<std::pair<std::uint8_t, std::uint8_t>> ranges, bool negate = false);
Symbol byte(char c);
Symbol ref(int rule);
// A literal's bytes, one symbol each.
Sequence literal(std::string_view text);
// One sequence after the other.
Sequence operator+(Sequence a, const Sequence& b);

class Grammar {
  public:
    // A new rule without alternatives yet (a reference may precede its alternatives: rules can recurse).
    int add_rule();
    void add_alternative(int rule, Sequence sequence);  // an empty sequence matches nothing: the rule is optional
    int add_rule(std::vector<Sequence> alternatives);
    void set_root(int rule) { root_ = rule; }

    // Whether some rule can reach itself before taking a byte (r ::= r, or through rules that may match
    // nothing): a matcher would follow it forever.
    bool left_recursive() const;

    // Flattened for the matcher: every alternative's symbols followed by an end marker.
    struct Flat {
        std::vector<Symbol> symbols;           // rule == -2 marks a sequence's end
        std::vector<std::vector<int>> starts;  // [rule]: where each alternative begins in `symbols`
    };
    Flat flatten() const;
    int root() const { return root_; }

  private:
    std::vector<std::vector<Sequence>> rules_;
    int root_ = 0;
};

// The parses that the bytes accepted so far leave open. Each set of parses met is numbered once and its moves
// on each byte are kept as found (a lazily built automaton, shared by copies), so that checking a whole
// vocabulary's pieces against the same set of parses costs a table lookup a byte after the first time.
// Copies share the table: one matcher and its copies on one thread at a time.
// A grammar whose alternatives multiply with nesting (more than 4096 parses at once, or 131,072 stacks made
// for one byte): thrown by the matcher's constructor or by whichever call meets it.
struct AmbiguityError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A parse nested deeper than 1024 places in the rules ends there.
class Matcher {
  public:
    explicit Matcher(const Grammar& grammar);
    // Takes `text` if every byte continues some parse; otherwise false and the matcher is unchanged.
    bool accept(std::string_view text);
    // Whether `text` would be taken, without taking it.
    bool allows(std::string_view text) const;
    // Whether the bytes accepted so far are a whole sentence of the grammar.
    bool complete() const;
    // The bytes some parse takes next: first_bytes()[b] for byte b.
    std::vector<bool> first_bytes() const;
    // How many sets of parses the automaton has met: its memory, which repetitions must not grow.
    std::size_t states() const;
    // The set of parses the matcher is in, numbered: a matcher in the same state takes the same texts.
    int state() const { return state_; }

  private:
    struct Automaton;
    // The state after `text` from `state`, or -1 when some byte of it is taken by no parse.
    int walk(int state, std::string_view text) const;

    std::shared_ptr<Automaton> automaton_;
    int state_ = 0;
};

}  // namespace runner::grammar
