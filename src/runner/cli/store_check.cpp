#include "runner/cli/store_check.h"

#include "runner/cli/model_options.h"
#include "runner/model/blob_digest.h"
#include "runner/offload/layer_cache.h"

namespace runner_cli {

bool check_store_model(const std::string& model, const char* command, bool all, std::ostream& err) {
    if (!names_ollama_model(model)) return true;
    const auto manifest = runner::read_ollama_manifest(model, runner::default_ollama_models());
    if (!manifest) {
        err << "ollama-airllm " << command << ": error: " << manifest.error().message << '\n';
        return false;
    }
    int reported = -1;
    const auto checked = runner::check_blob_digests(
        *manifest, runner::default_cache_root() / "verified-blobs", all, [&](std::uint64_t done, std::uint64_t total) {
            const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
            if (percent / 10 == reported / 10) return;
            reported = percent;
            err << "ollama-airllm " << command << ": checking blob digests " << percent << "%\n" << std::flush;
        });
    if (!checked) {
        err << "ollama-airllm " << command << ": error: " << checked.error().message << '\n';
        return false;
    }
    return true;
}

}  // namespace runner_cli
