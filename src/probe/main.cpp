// rocm-probe: lists AMD GPUs and says what an Ollama ROCm build and service need.
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "probe/probe.h"
#include "probe/render.h"

extern char** environ;

namespace {

enum ExitCode : int { exit_found = 0, exit_no_gpu = 1, exit_usage = 2 };

enum class Format { table, json, env, targets };

constexpr const char* usage_text = R"(usage: rocm-probe [options]

Detects AMD GPUs (rocm-smi-lib, KFD topology, DRM sysfs, PCI ids) and prints what an
Ollama ROCm build and service need.

  --format FORMAT     table (default), json, env (lines for /etc/default/ollama),
                      targets (';'-separated list for CMAKE_HIP_ARCHITECTURES)
  --json              same as --format json
  --sysfs-root DIR    read a captured tree (DIR/sys/class/kfd/..., DIR/sys/class/drm/...)
                      instead of /; rocm-smi is then not used
  --rocblas-dir DIR   rocBLAS library folder to check for TensileLibrary kernels
  --amdgpu-ids FILE   libdrm amdgpu.ids to take marketing names from
  --smi-library PATH  librocm_smi64 to load (default: loader path, $ROCM_PATH/lib, /opt/rocm/lib)
  --rocblas-library PATH
                      librocblas to try loading, as ollama-airllm does for its prompts
                      (default: librocblas.so.5 and .4 on the loader path, $ROCM_PATH/lib, /opt/rocm/lib)
  --no-smi            do not load rocm-smi-lib
  -v, --verbose       name the sources used and how each fact was decided
  -h, --help          this text

Exit status: 0 GPUs found, 1 no AMD GPU, 2 usage error or unreadable input.
)";

struct Cli {
    Format format = Format::table;
    bool verbose = false;
    bool smi_forced = false;
    bool rocblas_forced = false;
    probe::ProbeOptions options;
};

int usage_error(const std::string& message) {
    std::cerr << "rocm-probe: " << message << "\n(rocm-probe --help lists the options)\n";
    return exit_usage;
}

// Returns an exit code to stop with, or -1 to go on.
int parse_args(int argc, char** argv, Cli& cli) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            return exit_found;
        } else if (arg == "--json") {
            cli.format = Format::json;
        } else if (arg == "--format") {
            if (!value(v)) return usage_error("--format needs a value: table, json, env or targets");
            if (v == "table")
                cli.format = Format::table;
            else if (v == "json")
                cli.format = Format::json;
            else if (v == "env")
                cli.format = Format::env;
            else if (v == "targets")
                cli.format = Format::targets;
            else
                return usage_error("unknown --format '" + v + "'; expected table, json, env or targets");
        } else if (arg == "--sysfs-root") {
            if (!value(v)) return usage_error("--sysfs-root needs a folder");
            cli.options.root = v;
        } else if (arg == "--rocblas-dir") {
            if (!value(cli.options.rocblas_dir)) return usage_error("--rocblas-dir needs a folder");
        } else if (arg == "--amdgpu-ids") {
            if (!value(cli.options.amdgpu_ids)) return usage_error("--amdgpu-ids needs a file");
        } else if (arg == "--smi-library") {
            if (!value(cli.options.smi_library)) return usage_error("--smi-library needs a path");
            cli.smi_forced = true;
        } else if (arg == "--rocblas-library") {
            if (!value(cli.options.rocblas_library)) return usage_error("--rocblas-library needs a path");
            cli.rocblas_forced = true;
        } else if (arg == "--no-smi") {
            cli.options.use_smi = false;
            cli.options.smi_off_reason = "turned off by --no-smi";
        } else if (arg == "-v" || arg == "--verbose") {
            cli.verbose = true;
        } else {
            return usage_error("unknown argument '" + std::string(arg) + "'");
        }
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(cli.options.root, ec))
        return usage_error(cli.options.root.string() + ": not a folder; --sysfs-root takes the folder that holds sys/");
    for (const auto& [flag, path, want_dir] : {std::tuple{"--rocblas-dir", cli.options.rocblas_dir, true},
                                               std::tuple{"--amdgpu-ids", cli.options.amdgpu_ids, false}}) {
        if (path.empty()) continue;
        const bool ok = want_dir ? std::filesystem::is_directory(path, ec) : std::filesystem::is_regular_file(path, ec);
        if (!ok) return usage_error(std::string(flag) + " " + path + ": no such " + (want_dir ? "folder" : "file"));
    }
    // A replayed tree is not this machine: rocm-smi would describe the live GPUs instead.
    if (cli.options.root != "/" && !cli.smi_forced) cli.options.use_smi = false;
    if (cli.options.root != "/" && !cli.rocblas_forced) cli.options.load_rocblas = false;
    return -1;
}

void print_notes_to_stderr(const probe::ProbeReport& report, bool verbose) {
    for (const auto& n : report.notes) std::cerr << "rocm-probe: note: " << n << '\n';
    if (verbose)
        for (const auto& s : report.sources) std::cerr << "rocm-probe: source " << s.name << ": " << s.detail << '\n';
}

int run(int argc, char** argv) {
    Cli cli;
    if (const int code = parse_args(argc, argv, cli); code >= 0) return code;
    cli.options.environment = probe::relevant_environment(environ);

    const auto report = probe::run_probe(cli.options);
    const bool found = !report.gpus.empty();

    switch (cli.format) {
        case Format::table: std::cout << probe::render_table(report, cli.verbose); break;
        case Format::json: std::cout << probe::render_json(report); break;
        case Format::env:
            if (found) std::cout << probe::render_env(report);
            print_notes_to_stderr(report, cli.verbose);
            break;
        case Format::targets:
            if (found) std::cout << probe::render_targets(report);
            print_notes_to_stderr(report, cli.verbose);
            break;
    }
    if (found) return exit_found;
    if (cli.format != Format::table && cli.format != Format::json)
        std::cerr << "rocm-probe: " << report.none_found_reason << '\n';
    // "No GPU" would be a false answer when a node was there but could not be read.
    if (report.input_error) {
        std::cerr << "rocm-probe: error: some GPU information could not be read (see the notes); "
                     "check the files named there\n";
        return exit_usage;
    }
    return exit_no_gpu;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "rocm-probe: error: " << e.what() << "; please report this with `rocm-probe --verbose` output\n";
        return exit_usage;
    }
}
