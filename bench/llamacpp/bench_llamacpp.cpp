// llama.cpp's partial offload measured the way bench_offload measures ours: a prompt of N tokens, then
// decode steps after it, on the same GGUF file, with the GPU memory in use beside each row. Built against
// the llama.cpp that an Ollama release vendors (see CMakeLists.txt); never part of the main build.
//
// Each row loads the model with a number of layers on the GPU (llama.cpp keeps the rest, and the token
// embedding, in host memory) and a micro-batch; with op offload on, a prompt's host layers are computed
// on the GPU after their weights are copied over, which is llama.cpp's default.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "ggml-backend.h"
#include "llama.h"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

std::vector<int> parse_list(const char* flag, const char* text) {
    std::vector<int> values;
    std::string s = text;
    std::size_t start = 0;
    while (start <= s.size()) {
        const std::size_t end = std::min(s.find(',', start), s.size());
        char* stop = nullptr;
        const long v = std::strtol(s.c_str() + start, &stop, 10);
        if (stop != s.c_str() + end || end == start || v < 0) {
            std::fprintf(stderr, "bench_llamacpp: %s takes a comma-separated list of counts, got '%s'\n", flag, text);
            std::exit(2);
        }
        values.push_back(static_cast<int>(v));
        start = end + 1;
    }
    return values;
}

struct Options {
    std::string model;
    std::vector<int> gpu_layers = {99};
    std::vector<int> ubatches = {512};
    std::vector<int> op_offload = {1};
    std::vector<int> prompts = {32, 4096};
    int decode = 8;
    int ctx = 0;
    bool session = false;  // bench_conversation's coding-agent replay instead of the prompt/decode rows
    int system = 8000, turns = 6, turn_tokens = 300, answer = 100;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
};

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf(
                "usage: bench_llamacpp MODEL.gguf [--ngl 8,16,99] [--ubatch 512,4096] [--op-offload 1,0]\n"
                "                      [--prompts 32,4096] [--decode N] [--ctx N] [--threads N]\n"
                "       bench_llamacpp MODEL.gguf --session [--system N] [--turns N] [--turn-tokens N] [--answer N]\n"
                "                      [--ngl N] [--ubatch N] [--ctx N]   (bench_conversation's replay)\n");
            std::exit(0);
        }
        if (a == "--session") {
            o.session = true;
            continue;
        }
        if (i + 1 >= argc && a.rfind("--", 0) == 0) {
            std::fprintf(stderr, "bench_llamacpp: %s needs a value\n", a.c_str());
            std::exit(2);
        }
        const std::pair<const char*, std::vector<int>*> lists[] = {{"--ngl", &o.gpu_layers},
                                                                   {"--ubatch", &o.ubatches},
                                                                   {"--op-offload", &o.op_offload},
                                                                   {"--prompts", &o.prompts}};
        const std::pair<const char*, int*> counts[] = {{"--decode", &o.decode},   {"--ctx", &o.ctx},
                                                       {"--threads", &o.threads}, {"--system", &o.system},
                                                       {"--turns", &o.turns},     {"--turn-tokens", &o.turn_tokens},
                                                       {"--answer", &o.answer}};
        const auto list = std::find_if(std::begin(lists), std::end(lists), [&](const auto& f) { return a == f.first; });
        const auto count =
            std::find_if(std::begin(counts), std::end(counts), [&](const auto& f) { return a == f.first; });
        if (list != std::end(lists)) {
            *list->second = parse_list(list->first, argv[++i]);
        } else if (count != std::end(counts)) {
            const auto values = parse_list(count->first, argv[++i]);
            if (values.size() != 1) {
                std::fprintf(stderr, "bench_llamacpp: %s takes one count, got '%s'\n", count->first, argv[i]);
                std::exit(2);
            }
            *count->second = values.front();
        } else if (a.rfind("--", 0) == 0) {
            std::fprintf(stderr, "bench_llamacpp: unknown option %s (see --help)\n", a.c_str());
            std::exit(2);
        } else
            o.model = a;
    }
    if (o.model.empty()) {
        std::fprintf(stderr, "bench_llamacpp: name a GGUF file (see --help)\n");
        std::exit(2);
    }
    return o;
}

ggml_backend_dev_t gpu_device() {
    for (std::size_t i = 0; i < ggml_backend_dev_count(); ++i)
        if (ggml_backend_dev_type(ggml_backend_dev_get(i)) == GGML_BACKEND_DEVICE_TYPE_GPU)
            return ggml_backend_dev_get(i);
    return nullptr;
}

std::size_t free_bytes(ggml_backend_dev_t dev) {
    std::size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    return free;
}

// Runs tokens through the context in batches of n_batch, as a server feeds a prompt; false on failure.
bool run_tokens(llama_context* ctx, std::vector<llama_token>& tokens, int n_batch) {
    for (std::size_t at = 0; at < tokens.size(); at += static_cast<std::size_t>(n_batch)) {
        const int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(n_batch), tokens.size() - at));
        if (llama_decode(ctx, llama_batch_get_one(tokens.data() + at, n)) != 0) return false;
    }
    llama_synchronize(ctx);
    return true;
}

// bench_conversation's token ids: a system prompt, then per turn a message.
std::vector<llama_token> session_tokens(int n, int seed, int n_vocab) {
    std::vector<llama_token> ids(static_cast<std::size_t>(n));
    const int range = std::min(n_vocab, 32000);
    for (int i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = (seed + 7919 * i) % range;
    return ids;
}

llama_token greedy(llama_context* ctx, int n_vocab) {
    const float* logits = llama_get_logits_ith(ctx, -1);
    return static_cast<llama_token>(std::max_element(logits, logits + n_vocab) - logits);
}

// The replay as llama-server serves it: the slot's cache holds the conversation so far, and each
// request runs only what follows its longest common prefix (here everything before the new message and
// the last answer's final token, which a server samples but has not run yet).
int run_session(const Options& o, llama_context* ctx, int n_vocab, int n_batch) {
    std::printf("%4s %8s %6s %10s %13s\n", "turn", "prompt", "ran", "ttft s", "decode s/tok");
    auto conversation = session_tokens(o.system, 13, n_vocab);
    std::size_t in_cache = 0;
    for (int t = 0; t < o.turns; ++t) {
        const auto message = session_tokens(o.turn_tokens, 101 + t, n_vocab);
        conversation.insert(conversation.end(), message.begin(), message.end());
        std::vector<llama_token> fresh(conversation.begin() + static_cast<std::ptrdiff_t>(in_cache),
                                       conversation.end());
        const auto t0 = clock_type::now();
        if (!run_tokens(ctx, fresh, n_batch)) {
            std::fprintf(stderr, "bench_llamacpp: llama_decode failed on turn %d\n", t + 1);
            return 1;
        }
        llama_token next = greedy(ctx, n_vocab);
        const double ttft = seconds_since(t0);
        in_cache = conversation.size();
        conversation.push_back(next);
        const auto t1 = clock_type::now();
        for (int d = 1; d < o.answer; ++d) {
            std::vector<llama_token> one = {next};
            if (!run_tokens(ctx, one, n_batch)) {
                std::fprintf(stderr, "bench_llamacpp: llama_decode failed on turn %d's answer\n", t + 1);
                return 1;
            }
            ++in_cache;
            next = greedy(ctx, n_vocab);
            conversation.push_back(next);
        }
        const double decode = seconds_since(t1) / std::max(1, o.answer - 1);
        std::printf("%4d %8zu %6zu %10.3f %13.4f\n", t + 1, conversation.size() - static_cast<std::size_t>(o.answer),
                    fresh.size(), ttft, decode);
        std::fflush(stdout);
    }
    return 0;
}

void quiet_log(ggml_log_level level, const char* text, void*) {
    if (level >= GGML_LOG_LEVEL_WARN) std::fputs(text, stderr);
}

}  // namespace

// One configuration, in a process of its own: nothing is freed (the process ends), so that no
// configuration depends on the teardown of the one before it, which crashed in Ollama v0.24.0's build
// when a second model was loaded after the first was freed.
int run_configuration(const Options& o, int ngl, int ubatch, int op, int n_ctx) {
    llama_log_set(quiet_log, nullptr);
    ggml_backend_load_all();
    llama_backend_init();
    ggml_backend_dev_t gpu = gpu_device();
    if (gpu == nullptr) {
        std::fprintf(stderr,
                     "bench_llamacpp: no GPU backend loaded (is libggml-cuda or libggml-hip beside it, and "
                     "its CUDA or ROCm libraries on the library path?)\n");
        return 1;
    }
    const int max_prompt = *std::max_element(o.prompts.begin(), o.prompts.end());
    const std::size_t free_before = free_bytes(gpu);
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = ngl;
    llama_model* model = llama_model_load_from_file(o.model.c_str(), mp);
    if (model == nullptr) {
        std::fprintf(stderr, "bench_llamacpp: llama.cpp could not load %s\n", o.model.c_str());
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(n_ctx);
    cp.n_batch = static_cast<uint32_t>(ubatch);
    cp.n_ubatch = static_cast<uint32_t>(ubatch);
    cp.n_threads = o.threads;
    cp.n_threads_batch = o.threads;
    cp.op_offload = op != 0;
    cp.no_perf = true;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (ctx == nullptr) {
        std::fprintf(stderr, "bench_llamacpp: no context of %d tokens for ngl %d, ubatch %d\n", n_ctx, ngl, ubatch);
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    // The same token ids bench_offload feeds ours; one micro-batch first, so that the timed
    // runs do not pay for the kernels' first loads and the buffers' first allocation.
    auto prompt_of = [&](int n) {
        std::vector<llama_token> t(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<llama_token>((i * 7919) % 32000 % n_vocab);
        return t;
    };
    auto warm = prompt_of(std::min(ubatch, max_prompt));
    if (!run_tokens(ctx, warm, ubatch)) {
        std::fprintf(stderr, "bench_llamacpp: llama_decode failed while warming up\n");
        return 1;
    }
    if (o.session) {
        llama_memory_clear(llama_get_memory(ctx), true);
        const std::size_t free_loaded = free_bytes(gpu);
        const int rc = run_session(o, ctx, n_vocab, ubatch);
        std::printf("ngl %d, ubatch %d, op offload %s: VRAM %.2f GiB\n", ngl, ubatch, op != 0 ? "on" : "off",
                    static_cast<double>(free_before - std::min(free_before, free_loaded)) / (1ull << 30));
        return rc;
    }
    for (const int n : o.prompts) {
        llama_memory_clear(llama_get_memory(ctx), true);
        auto tokens = prompt_of(n);
        const auto t0 = clock_type::now();
        if (!run_tokens(ctx, tokens, ubatch)) {
            std::fprintf(stderr, "bench_llamacpp: llama_decode failed on the %d-token prompt\n", n);
            return 1;
        }
        const double prompt_s = seconds_since(t0);
        const auto t1 = clock_type::now();
        for (int d = 0; d < o.decode; ++d) {
            std::vector<llama_token> next = {static_cast<llama_token>(d + 1)};
            if (!run_tokens(ctx, next, ubatch)) {
                std::fprintf(stderr, "bench_llamacpp: llama_decode failed on decode step %d\n", d);
                return 1;
            }
        }
        const double decode_s = seconds_since(t1) / std::max(1, o.decode);
        const double used_gib = static_cast<double>(free_before - free_bytes(gpu)) / (1ull << 30);
        std::printf("%5d %7d %6s %7d %9.2f %12.0f %13.4f\n", ngl, ubatch, op != 0 ? "on" : "off", n, used_gib,
                    n / prompt_s, decode_s);
        std::fflush(stdout);
    }
    return 0;
}

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    const int max_prompt = *std::max_element(o.prompts.begin(), o.prompts.end());
    const int session_tokens_total = o.system + o.turns * (o.turn_tokens + o.answer);
    const int n_ctx = std::max(o.ctx, o.session ? session_tokens_total + 1 : max_prompt + o.decode + 1);
    std::printf("llama.cpp, %d threads, model %s\n", o.threads, o.model.c_str());
    std::printf("context %d; VRAM: device memory taken by the model and its context, from the free memory\n\n", n_ctx);
    if (!o.session)
        std::printf("%5s %7s %6s %7s %9s %12s %13s\n", "ngl", "ubatch", "op-off", "prompt", "VRAM GiB", "prompt tok/s",
                    "decode s/tok");
    std::fflush(stdout);
    int failed = 0;
    for (const int ngl : o.gpu_layers)
        for (const int ubatch : o.ubatches)
            for (const int op : o.op_offload) {
                const pid_t child = fork();
                if (child == 0) {
                    const int rc = run_configuration(o, ngl, ubatch, op, n_ctx);
                    std::fflush(stdout);
                    std::_Exit(rc);
                }
                int status = 0;
                if (child < 0 || waitpid(child, &status, 0) != child) {
                    std::fprintf(stderr, "bench_llamacpp: could not run ngl %d, ubatch %d\n", ngl, ubatch);
                    return 1;
                }
                if (WIFSIGNALED(status))
                    std::fprintf(stderr, "bench_llamacpp: ngl %d, ubatch %d ended by signal %d\n", ngl, ubatch,
                                 WTERMSIG(status));
                failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
            }
    return failed == 0 ? 0 : 1;
}
