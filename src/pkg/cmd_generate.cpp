// ollama-pkg generate [--check] [--config FILE] [--templates DIR] [--patches DIR] [--output DIR]
#include <string>

#include "pkg/commands.h"
#include "pkg/config.h"
#include "pkg/generate.h"

namespace pkg {

namespace {

constexpr const char* generate_usage =
    R"(usage: ollama-pkg generate [--check] [--config FILE] [--templates DIR] [--patches DIR] [--output DIR]

Renders templates/ with ollama-airllm-rocm.yaml into PKGBUILD, ollama-airllm-rocm.install,
ollama.service, ollama.env, sysusers.conf, tmpfiles.conf, .SRCINFO and .nvchecker.toml.
Defaults: the config in the current folder; templates/, patches/ and the output beside it.

  --check   write nothing; show a diff and exit 1 when the files differ from the templates
)";

}  // namespace

int run_generate(const std::vector<std::string>& args, CommandIo io) {
    GenerateOptions options;
    options.config = "ollama-airllm-rocm.yaml";
    bool check = false;
    std::filesystem::path templates, patches, output;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const auto value = [&](std::filesystem::path& out) {
            if (i + 1 >= args.size()) return false;
            out = args[++i];
            return true;
        };
        if (a == "-h" || a == "--help") {
            io.out << generate_usage;
            return exit_ok;
        }
        if (a == "--check") {
            check = true;
        } else if ((a == "--config" && value(options.config)) || (a == "--templates" && value(templates)) ||
                   (a == "--patches" && value(patches)) || (a == "--output" && value(output))) {
        } else {
            io.err << "ollama-pkg generate: unknown or incomplete argument '" << a << "'\n" << generate_usage;
            return exit_usage;
        }
    }
    const auto base = options.config.has_parent_path() ? options.config.parent_path() : std::filesystem::path(".");
    options.templates = templates.empty() ? base / "templates" : templates;
    options.patches = patches.empty() ? base / "patches" : patches;
    options.output = output.empty() ? base : output;

    const auto files = generate_recipe(options);
    if (!files) {
        io.err << "ollama-pkg generate: error:\n" << files.error().message << '\n';
        return exit_usage;
    }
    if (const auto config = load_config(options.config); config && !is_loopback_listen(config->service.listen))
        io.err << "ollama-pkg generate: warning: service.listen " << config->service.listen
               << " is not a loopback address: Ollama's API has no authentication, so whoever reaches it can run, "
                  "pull and delete models\n";
    if (check) {
        int stale = 0;
        for (const auto& status : compare_with_disk(*files, options.output)) {
            if (status.up_to_date) continue;
            ++stale;
            io.out << status.diff;
        }
        if (stale == 0) {
            io.out << "ollama-pkg generate --check: " << files->size() << " files match their templates\n";
            return exit_ok;
        }
        io.err << "ollama-pkg generate --check: " << stale << " file(s) differ from what the templates give; "
               << "run `ollama-pkg generate` and commit the result\n";
        return exit_failed;
    }
    const auto changed = write_generated(*files, options.output);
    if (!changed) {
        io.err << "ollama-pkg generate: error: " << changed.error().message << '\n';
        return exit_failed;
    }
    for (const auto& name : *changed) io.out << "wrote " << (options.output / name).string() << '\n';
    io.out << "ollama-pkg generate: " << changed->size() << " of " << files->size() << " files changed\n";
    return exit_ok;
}

}  // namespace pkg
