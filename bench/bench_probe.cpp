// How long rocm-probe takes on an eight-GPU host (the MI300X fixture), against the 50 ms budget.
// Two figures: the probe library alone (what `ollama-pkg` and the service pay per call) and the whole
// process (what a user at a prompt pays). The floor beside them is the bare cost of open, read and
// close on every file under sys/ of the tree (a superset of what the probe reads): the I/O alone.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "probe/probe.h"

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point start) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

struct Stats {
    double median = 0, p95 = 0, max = 0;
};

Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 95 / 100)], v.back()};
}

std::vector<std::string> files_under(const std::filesystem::path& dir) {
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
        if (entry.is_regular_file()) files.push_back(entry.path().string());
    return files;
}

double read_files(const std::vector<std::string>& files) {
    const auto start = clock_type::now();
    char buf[4096];
    for (const auto& file : files) {
        const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        while (read(fd, buf, sizeof buf) > 0) {
        }
        close(fd);
    }
    return ms_since(start);
}

double run_cli(const std::string& bin, const std::string& root) {
    const auto start = clock_type::now();
    const pid_t pid = fork();
    if (pid == 0) {
        std::freopen("/dev/null", "w", stdout);
        execl(bin.c_str(), bin.c_str(), "--sysfs-root", root.c_str(), "--json", static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "bench_probe: rocm-probe failed on %s\n", root.c_str());
        std::exit(1);
    }
    return ms_since(start);
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 200;
    const std::filesystem::path root = std::string(OAR_FIXTURES) + "/probe/mi300x-8gpu";

    probe::ProbeOptions options;
    options.root = root;
    options.use_smi = false;
    std::vector<double> lib, cli, floor;
    std::size_t gpus = 0;
    const auto files = files_under(root / "sys");
    for (int i = 0; i < runs; ++i) {
        floor.push_back(read_files(files));
        const auto start = clock_type::now();
        gpus = probe::run_probe(options).gpus.size();
        lib.push_back(ms_since(start));
        cli.push_back(run_cli(OAR_ROCM_PROBE, root.string()));
    }
    if (gpus != 8) {
        std::fprintf(stderr, "bench_probe: expected 8 GPUs in %s, found %zu\n", root.c_str(), gpus);
        return 1;
    }
    const auto l = stats(lib), c = stats(cli), f = stats(floor);
    std::printf("rocm-probe on 8 GPUs (%s), %d runs\n\n", root.filename().c_str(), runs);
    std::printf("%-34s %10s %10s %10s %12s\n", "what", "median ms", "p95 ms", "max ms", "budget ms");
    std::printf("%-34s %10.3f %10.3f %10.3f %12s\n",
                ("floor: read " + std::to_string(files.size()) + " files under sys/").c_str(), f.median, f.p95, f.max,
                "-");
    std::printf("%-34s %10.3f %10.3f %10.3f %12.1f\n", "probe library (run_probe)", l.median, l.p95, l.max, 50.0);
    std::printf("%-34s %10.3f %10.3f %10.3f %12.1f\n", "rocm-probe --json (whole process)", c.median, c.p95, c.max,
                50.0);
    std::printf("\nwithin budget: %s\n", c.p95 < 50.0 ? "yes" : "NO");
    return c.p95 < 50.0 ? 0 : 1;
}
