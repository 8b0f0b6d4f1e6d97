// ollama-airllm prepare's layer cache: files that read back as the slabs they were made from,
// resumable runs, and damaged or mismatched files named with what is wrong.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "runner/model/hf_folder.h"
#include "runner/offload/layer_cache.h"
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
