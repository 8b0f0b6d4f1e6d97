// Decode with layers streamed from disk under a RAM budget (AirLLM's case without a GPU). Streamed
// layers leave the page cache after use, so every token reads them from the file again; the bound
// is (streamed bytes per token / cold sequential read bandwidth of the model file) plus the time of
// the resident part. Both are measured here, on this machine's disk.
//
// usage: bench_stream_decode [MODEL_DIR] [RESIDENT_LAYERS] [TOKENS]
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "disk_bandwidth.h"
#include "random_model.h"
#include "runner/engine/generate.h"
#include "runner/engine/transformer.h"
#include "runner/model/hf_folder.h"

namespace fs = std::filesystem;

namespace {

// Fraction of the file's pages in the page cache (mincore on a fresh mapping).
double cached_fraction(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    const auto size = static_cast<std::size_t>(fs::file_size(file));
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return -1;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> vec((size + page - 1) / page);
    double resident = -1;
    if (::mincore(p, size, vec.data()) == 0)
        resident = static_cast<double>(std::count_if(vec.begin(), vec.end(), [](unsigned char v) { return v & 1; })) /
                   static_cast<double>(vec.size());
    ::munmap(p, size);
    return resident;
}

}  // namespace

int main(int argc, char** argv) {
    const fs::path dir = argc > 1 ? fs::path(argv[1]) : bench::default_model_dir();
    const int resident_layers = argc > 2 ? std::atoi(argv[2]) : 4;
    const int tokens = argc > 3 ? std::atoi(argv[3]) : 8;
    bench::ensure_random_model(dir);
    auto source = runner::open_hf_folder(dir);
    if (!source) {
        std::fprintf(stderr, "bench_stream_decode: %s\n", source.error().message.c_str());
        return 1;
    }
    auto weights = std::move(runner::bind_weights(**source)).value();
    // The budget holds the embeddings, the output head and the first RESIDENT_LAYERS layers.
    std::size_t budget = runner::plan_layers(weights, 0).resident_bytes;
    for (std::size_t i = 0; i < weights.layers.size(); ++i)
        if (static_cast<int>(i) >= resident_layers) budget -= weights.layers[i].bytes();
    const auto plan = runner::plan_layers(weights, budget);

    const double disk = std::max(bench::cold_read_gbs(dir / "model.safetensors", 1),
                                 bench::cold_read_gbs(dir / "model.safetensors", 4));
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    runner::Transformer model(**source, std::move(weights), 256, threads, plan);
    std::vector<std::int32_t> prompt = {1, 450, 4996, 17354};
    runner::SamplingParams params;
    params.temperature = 0;
    runner::Sampler sampler(params);
    runner::KvSequence sequence(model);
    const auto result = runner::generate(sequence, prompt, tokens, sampler, {}, nullptr);
    if (!result) {
        std::fprintf(stderr, "bench_stream_decode: %s\n", result.error().message.c_str());
        return 1;
    }
    const double per_token = result->decode_seconds / static_cast<double>(result->ids.size() - 1);
    const double bound = static_cast<double>(plan.streamed_bytes) / (disk * 1e9);
    std::printf(
        "\nstreamed decode, random Llama 1B-shape model, %d of %zu layers resident (budget %.2f GiB), %u threads\n\n",
        resident_layers, plan.resident.size(), static_cast<double>(budget) / (1u << 30), threads);
    std::printf("%-46s %12.1f\n", "streamed bytes per token (MiB)",
                static_cast<double>(plan.streamed_bytes) / (1 << 20));
    std::printf("%-46s %12.2f\n", "cold read of the file, best of 1 and 4 readers (GB/s)", disk);
    std::printf("%-46s %12.3f\n", "bound: streamed bytes / read bandwidth (s/token)", bound);
    std::printf("%-46s %12.3f\n", "achieved (s/token)", per_token);
    std::printf("%-46s %11.0f%%\n", "bound / achieved", 100.0 * bound / per_token);
    std::printf("%-46s %12zu\n", "bytes streamed over the run (MiB)", model.stream_stats().bytes_streamed >> 20);
    const double cached = cached_fraction(dir / "model.safetensors");
    std::printf("%-46s %11.0f%%\n", "file in the page cache after the run", 100.0 * cached);
    if (cached > 0.9)
        std::printf(
            "\nwarning: this filesystem kept the streamed layers cached despite POSIX_FADV_DONTNEED, so the\n"
            "figures above are page-cache reads, not disk reads; run it on a local disk (ext4, btrfs, xfs).\n");
    return 0;
}
