// ollama-airllm info MODEL [--ram-budget SIZE]
#include <cstdio>

#include "runner/backend/cpu/int8_dot.h"
#include "runner/backend/cpu/simd.h"
#include "runner/cli/commands.h"
#include "runner/cli/model_options.h"

namespace runner_cli {

int run_info(const std::vector<std::string>& args, CommandIo io) {
    std::string model;
    std::uint64_t ram_budget = 0;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "-h" || args[i] == "--help") {
            io.out << "usage: ollama-airllm info MODEL [--ram-budget SIZE]\n\nArchitecture, parameters, bytes per "
                      "layer and "
                      "which layers stay in memory or stream under the budget.\n";
            return exit_ok;
        }
        if (args[i] == "--ram-budget" && i + 1 < args.size()) {
            const auto size = parse_size(args[++i]);
            if (!size) {
                io.err << "ollama-airllm info: --ram-budget '" << args[i] << "' is not a size such as 8GiB\n";
                return exit_usage;
            }
            ram_budget = *size;
        } else if (model.empty() && args[i].front() != '-') {
            model = args[i];
        } else {
            io.err << "ollama-airllm info: unknown argument '" << args[i] << "'\n";
            return exit_usage;
        }
    }
    if (model.empty()) {
        io.err << "ollama-airllm info: which model? (ollama-airllm info MODEL_FOLDER)\n";
        return exit_usage;
    }
    auto m = open_model(model, "info", io.err);
    if (!m) return exit_usage;
    const auto& c = m->source->config();
    const auto plan = runner::plan_layers(m->weights, ram_budget);
    std::uint64_t params = 0, bytes = plan.resident_bytes + plan.streamed_bytes;
    for (const auto* t : {m->weights.token_embd, m->weights.output_norm})
        params += static_cast<std::uint64_t>(t->numel());
    if (m->weights.output != m->weights.token_embd) params += static_cast<std::uint64_t>(m->weights.output->numel());
    for (const auto& l : m->weights.layers)
        for (const auto* t : {l.attn_norm, l.wq, l.wk, l.wv, l.wo, l.bq, l.bk, l.bv, l.q_norm, l.k_norm, l.ffn_norm,
                              l.w_gate, l.w_up, l.w_down})
            if (t) params += static_cast<std::uint64_t>(t->numel());

    io.out << "model         " << m->source->describe() << '\n'
           << "architecture  " << c.arch.name << (c.arch.qkv_bias ? " (q/k/v bias)" : "")
           << (c.arch.qk_norm ? " (q/k norm)" : "") << '\n'
           << "parameters    " << params << " (" << format_size(bytes) << " of "
           << runner::dtype_name(m->weights.layers[0].wq->dtype) << " weights)\n"
           << "layers        " << c.n_layer << " x " << format_size(m->weights.layers[0].bytes()) << '\n'
           << "shape         n_embd " << c.n_embd << ", n_head " << c.n_head << ", n_head_kv " << c.n_head_kv
           << ", head_dim " << c.head_dim << ", n_ff " << c.n_ff << ", n_vocab " << c.n_vocab << '\n'
           << "rope          theta " << c.rope_theta
           << (c.rope_scaling.type.empty() ? "" : ", scaling " + c.rope_scaling.type) << '\n'
           << "embeddings    " << (c.tie_embeddings ? "tied" : "separate output head") << '\n'
           << "cpu kernels   " << (runner::cpu::using_avx2() ? "AVX2+FMA" : "portable")
           << "; quantized rows on 8-bit activations"
           << (runner::cpu::using_vnni() ? " (prompts through AVX512-VNNI)" : "") << '\n';
    int resident = 0;
    for (const bool r : plan.resident) resident += r;
    io.out << "plan          " << (ram_budget ? "RAM budget " + format_size(ram_budget) : std::string("no RAM budget"))
           << ": " << resident << " layers resident (" << format_size(plan.resident_bytes)
           << " with embeddings and output), " << (c.n_layer - resident) << " streamed ("
           << format_size(plan.streamed_bytes) << " read per token)\n";
    return exit_ok;
}

}  // namespace runner_cli
