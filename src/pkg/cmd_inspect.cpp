// ollama-pkg inspect FILE [--json]
#include <string_view>

#include "pkg/commands.h"
#include "pkg/inspect.h"

namespace pkg {

namespace {

constexpr const char* inspect_usage = R"(usage: ollama-pkg inspect FILE [--json]

Reads a built package (.pkg.tar.zst) without installing it: prints .PKGINFO, the compression,
the control files (.BUILDINFO, .MTREE, .INSTALL), every file with mode and size, then checks
the expected ollama-airllm-rocm layout (files, modes, backup=, forbidden folders,
world-writable entries, no PYTHONPATH in etc/default/ollama).

  --json      print one JSON object instead of text
  -h, --help  this text

Exit status: 0 layout ok, 1 a layout check failed, 2 usage error or unreadable package.
)";

int usage_error(CommandIo io, const std::string& message) {
    io.err << "ollama-pkg inspect: " << message << "\n(ollama-pkg inspect --help shows the usage)\n";
    return exit_usage;
}

}  // namespace

int run_inspect(const std::vector<std::string>& args, CommandIo io) {
    bool json = false;
    std::string file;
    for (const auto& arg : args) {
        if (arg == "-h" || arg == "--help") {
            io.out << inspect_usage;
            return exit_ok;
        } else if (arg == "--json") {
            json = true;
        } else if (!arg.empty() && arg.front() == '-') {
            return usage_error(io, "unknown option '" + arg + "'");
        } else if (!file.empty()) {
            return usage_error(io, "one package file at a time (got '" + file + "' and '" + arg + "')");
        } else {
            file = arg;
        }
    }
    if (file.empty()) return usage_error(io, "which package file? (ollama-pkg inspect FILE)");

    const auto report = inspect_package(file);
    if (!report) {
        io.err << "ollama-pkg inspect: error: " << report.error().message
               << "; is it a complete package built by makepkg?\n";
        return exit_usage;
    }
    if (json)
        render_inspect_json(*report, io.out);
    else
        render_inspect_text(*report, io.out);
    if (!report->layout_ok()) {
        for (const auto& c : report->checks)
            if (c.status == CheckStatus::failed)
                io.err << "ollama-pkg inspect: " << c.path << ": " << c.rule << ": " << c.detail << '\n';
        return exit_failed;
    }
    return exit_ok;
}

}  // namespace pkg
