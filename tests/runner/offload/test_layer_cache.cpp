// ollama-airllm prepare's layer cache: files that read back as the slabs they were made from,
// resumable runs, and damaged or mismatched files named with what is wrong.
#include <doctest/doctest.h>
#include <pwd.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <vector>

#include "runner/backend/cpu/ops.h"
#include "runner/model/hf_folder.h"
#include "runner/offload/layer_cache.h"
#include "runner/offload/layer_slab.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;

namespace {

const fs::path models = fs::path(OAR_FIXTURES) / "models";

struct Opened {
    runner::WeightSourcePtr source;
    runner::ModelWeights weights;
};

Opened open(const std::string& name) {
    auto source = runner::open_hf_folder(models / name);
    REQUIRE(source.ok());
    auto weights = runner::bind_weights(**source);
    REQUIRE(weights.ok());
    return {std::move(source).value(), std::move(weights).value()};
}

void ignore(std::size_t, std::size_t) {}

// A [rows, cols] matrix of the slab's format at `at`.

// down(silu(gate x) * up x) from the given matrices, rows = gate's rows.
std::vector<float> mlp(const runner::cpu::Matrix& gate, const runner::cpu::Matrix& up, const runner::cpu::Matrix& down,
                       const std::vector<float>& x, runner::cpu::ThreadPool& pool) {
    const auto rows = gate.rows();
    std::vector<float> g(rows), u(rows), y(x.size(), 0.f);
    if (rows == 0) return y;
    runner::cpu::matmul(g.data(), x.data(), gate, nullptr, 1, pool);
    runner::cpu::matmul(u.data(), x.data(), up, nullptr, 1, pool);
    runner::cpu::swiglu(g.data(), u.data(), rows);
    runner::cpu::matmul(y.data(), g.data(), down, nullptr, 1, pool);
    return y;
}

}  // namespace

TEST_CASE("layer cache: prepare writes each layer once, and the files read back as the slabs") {
    test_support::TempTree tree;
    const auto m = open("llama-gqa4-llama3rope");
    const auto dir = runner::cache_dir(tree.root(), m.weights, runner::Compression::q8);
    CHECK(dir.parent_path().filename() == runner::model_id(m.weights));
    CHECK(runner::model_id(m.weights) != runner::model_id(open("qwen2-bias-tied").weights));
    CHECK_FALSE(runner::cache_complete(dir, m.weights, runner::Compression::q8));

    std::size_t calls = 0;
    auto first =
        runner::prepare_cache(m.weights, runner::Compression::q8, dir, [&](std::size_t done, std::size_t total) {
            CHECK(done == ++calls);
            CHECK(total == m.weights.layers.size());
        });
    REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error().message));
    CHECK(first->written == m.weights.layers.size());
    CHECK(runner::cache_complete(dir, m.weights, runner::Compression::q8));
    for (std::size_t i = 0; i < m.weights.layers.size(); ++i) {
        const auto layout = runner::layout_of(m.weights.layers[i], runner::Compression::q8);
        std::vector<std::byte> want(layout.bytes), got(layout.bytes);
        runner::fill_slab(want.data(), m.weights.layers[i], layout, 2);
        CHECK_FALSE(runner::read_cached_layer(dir, i, layout, runner::Compression::q8, got.data(), true));
        CHECK(got == want);
        CHECK(fs::file_size(runner::cache_file(dir, i)) == runner::cache_header_bytes + layout.bytes);
    }
    for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().extension() == ".bin");

    // A second run keeps everything.
    auto again = runner::prepare_cache(m.weights, runner::Compression::q8, dir, ignore);
    REQUIRE(again.ok());
    CHECK(again->written == 0);
    CHECK(again->kept == m.weights.layers.size());
}

TEST_CASE("layer cache: damaged, short, missing and mismatched files are errors naming the file, and prepare repairs") {
    test_support::TempTree tree;
    const auto m = open("llama-gqa4-llama3rope");
    const auto dir = runner::cache_dir(tree.root(), m.weights, runner::Compression::q4);
    REQUIRE(runner::prepare_cache(m.weights, runner::Compression::q4, dir, ignore).ok());
    const auto layout = runner::layout_of(m.weights.layers[1], runner::Compression::q4);
    std::vector<std::byte> buf(layout.bytes);
    const auto file = runner::cache_file(dir, 1);
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(runner::cache_header_bytes + 100));
        f.put('\x5a');
    }
    auto error = runner::read_cached_layer(dir, 1, layout, runner::Compression::q4, buf.data(), true);
    REQUIRE(error);
    CHECK(error->message ==
          file.string() + ": checksum mismatch (the file is damaged); run ollama-airllm prepare again");
    CHECK_FALSE(runner::read_cached_layer(dir, 1, layout, runner::Compression::q4, buf.data(), false));  // header only

    auto repaired = runner::prepare_cache(m.weights, runner::Compression::q4, dir, ignore);
    REQUIRE(repaired.ok());
    CHECK(repaired->written == 1);
    CHECK_FALSE(runner::read_cached_layer(dir, 1, layout, runner::Compression::q4, buf.data(), true));

    // The 8bit layout against a 4bit file, a layer's file under another number, a short file, no file.
    const auto q8 = runner::layout_of(m.weights.layers[1], runner::Compression::q8);
    std::vector<std::byte> big(q8.bytes);
    error = runner::read_cached_layer(dir, 1, q8, runner::Compression::q8, big.data(), true);
    REQUIRE(error);
    CHECK(error->message.find("written for another layer, model or compression") != std::string::npos);
    fs::copy_file(runner::cache_file(dir, 0), file, fs::copy_options::overwrite_existing);
    error = runner::read_cached_layer(dir, 1, layout, runner::Compression::q4, buf.data(), true);
    REQUIRE(error);
    CHECK(error->message.find("written for another layer") != std::string::npos);
    fs::resize_file(file, runner::cache_header_bytes + 10);
    CHECK_FALSE(runner::cache_complete(dir, m.weights, runner::Compression::q4));
    fs::remove(file);
    error = runner::read_cached_layer(dir, 1, layout, runner::Compression::q4, buf.data(), true);
    REQUIRE(error);
    CHECK(error->message.find(file.string() + ": cannot open: No such file or directory") == 0);
}

TEST_CASE("cli: prepare shows progress, prints the cache folder, resumes, and refuses what it cannot do") {
    test_support::TempTree tree;
    const std::string model = (models / "qwen3-qknorm-headdim").string();
    const std::string airllm = OAR_OLLAMA_AIRLLM;
    auto r =
        test_support::run_process({airllm, "prepare", model, "--compression", "4bit", "--cache", tree.root().string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const fs::path dir = r.out.substr(0, r.out.size() - 1);
    CHECK(dir.parent_path().parent_path() == tree.root());
    CHECK(dir.filename() == "4bit");
    CHECK(r.err.find("] layer 3/3") != std::string::npos);
    CHECK(r.err.find("3 layers written, 0 already in the cache") != std::string::npos);
    r = test_support::run_process({airllm, "prepare", model, "--compression", "4bit"},
                                  {"AIRLLM_CACHE_DIR=" + tree.root().string()});
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("0 layers written, 3 already in the cache") != std::string::npos);

    for (const auto& args : {std::vector<std::string>{airllm, "prepare", model},
                             std::vector<std::string>{airllm, "prepare", model, "--compression", "none"},
                             std::vector<std::string>{airllm, "prepare", "--compression", "8bit"}}) {
        r = test_support::run_process(args);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("a MODEL and --compression 8bit or 4bit are required") != std::string::npos);
    }
    r = test_support::run_process({airllm, "prepare", model, "--compression", "8bit", "--cache", "/dev/null/cache"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("error: cannot create /dev/null/cache/") != std::string::npos);
}

// A split slab against the whole one, uncompressed and compressed: everything but the MLP where layout_of
// puts it, the GPU's rows before gpu_bytes and the host's after, and the two blocks' MLPs summing to the
// whole one (compressed, every block's weights exactly the whole matrix's).
TEST_CASE("split layout: the GPU's and the host's MLP rows sum to the whole MLP, the rest laid out as before") {
    using namespace runner::layer_slot;
    runner::cpu::ThreadPool pool(2);
    for (const char* name : {"llama-gqa4-llama3rope", "qwen2-bias-tied"})
        for (const auto compression : {runner::Compression::none, runner::Compression::q8, runner::Compression::q4}) {
            CAPTURE(name);
            CAPTURE(runner::compression_name(compression));
            const auto m = open(name);
            const auto& l = m.weights.layers.front();
            const auto n_ff = static_cast<int>(l.w_down->shape[1]);
            const auto e = l.w_down->shape[0];
            const auto dtype = l.w_down->dtype;
            const auto whole = runner::layout_of(l, compression);
            const auto type = whole.type[w_gate];
            CHECK(runner::is_quantized(type) == (compression != runner::Compression::none));
            std::vector<std::byte> plain(whole.bytes);
            runner::fill_slab(plain.data(), l, whole, 1);
            const auto at = [&](std::size_t offset) { return plain.data() + offset; };
            std::vector<float> x(static_cast<std::size_t>(e));
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
            const auto want = mlp(runner::slab_matrix(at(whole.offset[w_gate]), type, dtype, n_ff, e),
                                  runner::slab_matrix(at(whole.offset[w_up]), type, dtype, n_ff, e),
                                  runner::slab_matrix(at(whole.offset[w_down]), type, dtype, e, n_ff), x, pool);
            const int granule = runner::split_granule(l, compression);
            for (const int gpu_rows : {0, granule, n_ff / 2 / granule * granule, n_ff}) {
                CAPTURE(gpu_rows);
                const auto split = runner::split_layout(l, compression, gpu_rows);
                CHECK(split.gpu_rows + split.host_rows == n_ff);
                std::vector<std::byte> slab(split.layout.bytes);
                runner::fill_split_slab(slab.data(), l, split, plain.data());
                // attention tensors and norms: as in the plain slab, all before the MLP
                for (std::size_t i = 0; i < w_gate; ++i) {
                    CHECK(split.layout.offset[i] == whole.offset[i]);
                    CHECK(std::memcmp(slab.data() + whole.offset[i], plain.data() + whole.offset[i], whole.size[i]) ==
                          0);
                }
                const auto aligned = [](std::size_t n) { return (n + 255) / 256 * 256; };
                for (const std::size_t offset :
                     {split.layout.offset[w_gate], split.layout.offset[w_up], split.layout.offset[w_down],
                      split.host_gate, split.host_up, split.host_down, split.gpu_bytes})
                    CHECK(offset % 256 == 0);
                CHECK(split.gpu_bytes == aligned(split.layout.offset[w_down] + split.layout.size[w_down]));
                CHECK(split.gpu_bytes == split.host_gate);
                CHECK(split.layout.bytes <= whole.bytes + runner::split_extra_bytes);
                const auto gpu_gate =
                    runner::slab_matrix(slab.data() + split.layout.offset[w_gate], type, dtype, gpu_rows, e);
                const auto gpu_up =
                    runner::slab_matrix(slab.data() + split.layout.offset[w_up], type, dtype, gpu_rows, e);
                const auto gpu_down =
                    runner::slab_matrix(slab.data() + split.layout.offset[w_down], type, dtype, e, gpu_rows);
                const auto host_gate =
                    runner::slab_matrix(slab.data() + split.host_gate, type, dtype, split.host_rows, e);
                const auto host_up = runner::slab_matrix(slab.data() + split.host_up, type, dtype, split.host_rows, e);
                const auto host_down =
                    runner::slab_matrix(slab.data() + split.host_down, type, dtype, e, split.host_rows);
                CHECK(split.host_down + host_down.bytes() <= split.layout.bytes);
                const auto gpu_part = mlp(gpu_gate, gpu_up, gpu_down, x, pool);
                const auto host_part = mlp(host_gate, host_up, host_down, x, pool);
                float worst = 0, scale = 1e-6f;
                for (std::size_t i = 0; i < want.size(); ++i) {
                    worst = std::max(worst, std::abs(gpu_part[i] + host_part[i] - want[i]));
                    scale = std::max(scale, std::abs(want[i]));
                }
                CHECK(worst / scale < 1e-5f);
                // every weight of the blocks is the whole matrix's, bit for bit
                const auto ne = static_cast<std::size_t>(e), nf = static_cast<std::size_t>(n_ff);
                std::vector<float> got(std::max(ne, nf)), expected(got.size());
                std::size_t mismatched = 0;
                const auto compare = [&](const runner::cpu::Matrix& part, std::size_t row, std::size_t from,
                                         const std::vector<float>& full) {
                    part.convert(row, got.data());
                    mismatched += !std::equal(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(part.cols()),
                                              full.begin() + static_cast<std::ptrdiff_t>(from));
                };
                const auto full_gate = runner::slab_matrix(at(whole.offset[w_gate]), type, dtype, n_ff, e);
                const auto full_down = runner::slab_matrix(at(whole.offset[w_down]), type, dtype, e, n_ff);
                for (std::size_t r = 0; r < nf; ++r) {
                    full_gate.convert(r, expected.data());
                    if (r < static_cast<std::size_t>(gpu_rows))
                        compare(gpu_gate, r, 0, expected);
                    else
                        compare(host_gate, r - static_cast<std::size_t>(gpu_rows), 0, expected);
                }
                for (std::size_t r = 0; r < ne; ++r) {
                    full_down.convert(r, expected.data());
                    if (gpu_rows > 0) compare(gpu_down, r, 0, expected);
                    if (split.host_rows > 0) compare(host_down, r, static_cast<std::size_t>(gpu_rows), expected);
                }
                CHECK(mismatched == 0);
            }
            CHECK_THROWS_AS(runner::split_layout(l, compression, n_ff + 1), std::invalid_argument);
            CHECK_THROWS_AS(runner::split_layout(l, compression, -1), std::invalid_argument);
            if (compression != runner::Compression::none) {
                CHECK_THROWS_AS(runner::split_layout(l, compression, 8), std::invalid_argument);
                CHECK_THROWS_AS(
                    runner::fill_split_slab(plain.data(), l, runner::split_layout(l, compression, 32), nullptr),
                    std::invalid_argument);
            }
            // an MLP whose matrices disagree in dtype is not split
            CHECK(runner::splittable(l, compression));
            auto odd = l;
            runner::TensorView up = *l.w_up;
            up.dtype = up.dtype == runner::DType::f32 ? runner::DType::bf16 : runner::DType::f32;
            odd.w_up = &up;
            CHECK_FALSE(runner::splittable(odd, compression));
            CHECK_THROWS_AS(runner::split_layout(odd, compression, 32), std::invalid_argument);
        }
}

TEST_CASE("split layout: a GGUF layer's MLP (Q4_K gate and up, Q6_K down) splits at a 256-weight block") {
    using namespace runner::layer_slot;
    // Random blocks with sane f16 scales: 512 MLP rows over 256 inputs, as Q4_K_M stores them.
    const auto random_blocks = [](runner::DType type, std::size_t rows, std::size_t cols, unsigned seed,
                                  std::size_t scale_at, std::size_t min_at) {
        std::mt19937 rng(seed);
        std::vector<std::byte> b(rows * runner::row_bytes(type, cols));
        for (auto& v : b) v = static_cast<std::byte>(rng() & 0xff);
        const unsigned char small[2] = {0x00, 0x14};  // f16 2^-10, little-endian
        for (std::size_t at = 0; at < b.size(); at += runner::block_bytes(type)) {
            std::memcpy(b.data() + at + scale_at, small, 2);
            if (min_at) std::memcpy(b.data() + at + min_at, small, 2);
        }
        return b;
    };
    const std::size_t n_ff = 512, e = 256;
    const auto gate_bytes = random_blocks(runner::DType::q4_k, n_ff, e, 1, 0, 2);
    const auto up_bytes = random_blocks(runner::DType::q4_k, n_ff, e, 2, 0, 2);
    const auto down_bytes = random_blocks(runner::DType::q6_k, e, n_ff, 3, 208, 0);
    const auto view = [](const std::vector<std::byte>& b, runner::DType type, std::size_t rows, std::size_t cols) {
        runner::TensorView t;
        t.dtype = type;
        t.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
        t.data = b.data();
        t.bytes = b.size();
        return t;
    };
    const auto gate = view(gate_bytes, runner::DType::q4_k, n_ff, e), up = view(up_bytes, runner::DType::q4_k, n_ff, e),
               down = view(down_bytes, runner::DType::q6_k, e, n_ff);
    runner::LayerWeights l{};
    l.w_gate = &gate, l.w_up = &up, l.w_down = &down;
    const auto compression = runner::Compression::none;
    REQUIRE(runner::splittable(l, compression));
    CHECK(runner::split_granule(l, compression) == 256);
    CHECK_THROWS_AS(runner::split_layout(l, compression, 128), std::invalid_argument);
    runner::cpu::ThreadPool pool(2);
    std::vector<float> x(e);
    for (std::size_t i = 0; i < e; ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
    const auto want = mlp(gate, up, down, x, pool);
    for (const int gpu_rows : {0, 256, 512}) {
        CAPTURE(gpu_rows);
        const auto split = runner::split_layout(l, compression, gpu_rows);
        CHECK(split.layout.type[w_gate] == runner::WeightType::q4_k);
        CHECK(split.layout.type[w_down] == runner::WeightType::q6_k);
        std::vector<std::byte> slab(split.layout.bytes);
        runner::fill_split_slab(slab.data(), l, split, nullptr);
        const auto g = static_cast<std::size_t>(gpu_rows), h = static_cast<std::size_t>(split.host_rows);
        const auto part = [&](std::size_t offset, runner::DType type, std::size_t rows, std::size_t cols) {
            return runner::slab_matrix(slab.data() + offset, runner::stored_type(type), type, rows, cols);
        };
        const auto gpu_part = mlp(part(split.layout.offset[w_gate], runner::DType::q4_k, g, e),
                                  part(split.layout.offset[w_up], runner::DType::q4_k, g, e),
                                  part(split.layout.offset[w_down], runner::DType::q6_k, e, g), x, pool);
        const auto host_down = part(split.host_down, runner::DType::q6_k, e, h);
        const auto host_part = mlp(part(split.host_gate, runner::DType::q4_k, h, e),
                                   part(split.host_up, runner::DType::q4_k, h, e), host_down, x, pool);
        CHECK(split.host_down + host_down.bytes() <= split.layout.bytes);
        float worst = 0, scale = 1e-6f;
        for (std::size_t i = 0; i < e; ++i) {
            worst = std::max(worst, std::abs(gpu_part[i] + host_part[i] - want[i]));
            scale = std::max(scale, std::abs(want[i]));
        }
        CHECK(worst / scale < 1e-5f);
        // down's rows, split at the block boundary, hold exactly the whole rows' blocks
        std::vector<float> whole_row(n_ff), piece(n_ff);
        const runner::cpu::Matrix full_down(down);
        std::size_t mismatched = 0;
        for (std::size_t r = 0; r < e; ++r) {
            full_down.convert(r, whole_row.data());
            if (h > 0) {
                host_down.convert(r, piece.data());
                mismatched += !std::equal(piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(h),
                                          whole_row.begin() + static_cast<std::ptrdiff_t>(g));
            }
        }
        CHECK(mismatched == 0);
    }
}

TEST_CASE("layer cache: without HOME the cache goes to the user's home from the password database, not /tmp") {
    const auto saved = [](const char* name) {
        const char* v = std::getenv(name);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    const auto home = saved("HOME"), xdg = saved("XDG_CACHE_HOME"), dir = saved("AIRLLM_CACHE_DIR");
    ::unsetenv("HOME");
    ::unsetenv("XDG_CACHE_HOME");
    ::unsetenv("AIRLLM_CACHE_DIR");
    const auto root = runner::default_cache_root();
    const passwd* pw = ::getpwuid(::getuid());
    for (const auto& [name, value] : {std::pair{"HOME", home}, {"XDG_CACHE_HOME", xdg}, {"AIRLLM_CACHE_DIR", dir}})
        if (value) ::setenv(name, value->c_str(), 1);
    REQUIRE(pw);
    CHECK(root == std::filesystem::path(pw->pw_dir) / ".cache/ollama-airllm");
    CHECK(root.string().rfind("/tmp/", 0) != 0);
}

TEST_CASE("layer cache: weights rewritten past a tensor's first bytes give another cache folder") {
    // The old identity, a tensor's first 64 bytes, kept a stale cache for a rewritten layer.
    test_support::TempTree tree;
    tree.copy(models / "llama-gqa4-llama3rope", "m");
    const auto id_of = [&] {
        auto source = runner::open_hf_folder(tree.root() / "m");
        REQUIRE(source.ok());
        auto weights = runner::bind_weights(**source);
        REQUIRE(weights.ok());
        return runner::model_id(*weights);
    };
    const auto before = id_of();
    CHECK(id_of() == before);
    const auto file = tree.root() / "m/model.safetensors";
    auto bytes = test_support::read_file(file);
    bytes[bytes.size() - 1] = static_cast<char>(bytes[bytes.size() - 1] ^ 0x40);
    tree.write("m/model.safetensors", bytes);
    CHECK(id_of() != before);
}
