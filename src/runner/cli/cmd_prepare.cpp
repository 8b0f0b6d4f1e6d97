// ollama-airllm prepare MODEL --compression 8bit|4bit [--cache DIR]
// Compresses every layer once into the layer cache, which the GPU engine then reads instead of
// compressing at each start (and can stream from disk when the model does not fit in RAM).
#include <cstdio>

#include "runner/cli/commands.h"
#include "runner/cli/model_options.h"
#include "runner/offload/layer_cache.h"

namespace runner_cli {

namespace {

constexpr const char* prepare_usage = R"(usage: ollama-airllm prepare MODEL --compression 8bit|4bit [--cache DIR]

Writes MODEL's layers block-quantized to DIR/<model id>/<compression>/ (default DIR: $AIRLLM_CACHE_DIR,
else ~/.cache/ollama-airllm), one checksummed file per layer, each written whole or not at all. A
stopped run resumes: layers already there and intact are kept. The runner and generate use the cache
when AIRLLM_COMPRESSION (or --compression) asks for the same compression.
)";

}  // namespace

int run_prepare(const std::vector<std::string>& args, CommandIo io) {
    std::string model, compression_text;
    std::filesystem::path root = runner::default_cache_root();
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "-h" || a == "--help") {
            io.out << prepare_usage;
            return exit_ok;
        } else if (a == "--compression" && i + 1 < args.size()) {
            compression_text = args[++i];
        } else if (a == "--cache" && i + 1 < args.size()) {
            root = args[++i];
        } else if (model.empty() && !a.empty() && a.front() != '-') {
            model = a;
        } else {
            io.err << "ollama-airllm prepare: unknown or incomplete argument '" << a << "'\n" << prepare_usage;
            return exit_usage;
        }
    }
    runner::Compression compression = runner::Compression::none;
    if (model.empty() || !runner::parse_compression(compression_text, compression) ||
        compression == runner::Compression::none) {
        io.err << "ollama-airllm prepare: a MODEL and --compression 8bit or 4bit are required\n" << prepare_usage;
        return exit_usage;
    }
    auto m = open_model(model, "prepare", io.err);
    if (!m) return exit_usage;
    const auto dir = runner::cache_dir(root, m->weights, compression);
    io.err << "ollama-airllm prepare: " << m->source->describe() << ", " << runner::compression_name(compression)
           << " -> " << dir.string() << '\n';
    auto result = runner::prepare_cache(m->weights, compression, dir, [&](std::size_t done, std::size_t total) {
        const int width = 30, filled = static_cast<int>(done * width / total);
        io.err << "\r[" << std::string(static_cast<std::size_t>(filled), '#')
               << std::string(static_cast<std::size_t>(width - filled), '.') << "] layer " << done << "/" << total
               << std::flush;
    });
    io.err << '\n';
    if (!result) {
        io.err << "ollama-airllm prepare: error: " << result.error().message << '\n';
        return exit_failed;
    }
    io.out << dir.string() << '\n';
    io.err << "ollama-airllm prepare: " << result->written << " layers written, " << result->kept
           << " already in the cache\n";
    return exit_ok;
}

}  // namespace runner_cli
