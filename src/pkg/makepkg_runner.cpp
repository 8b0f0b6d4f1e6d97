#include "pkg/makepkg_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/subprocess.h"

namespace pkg {

namespace {

volatile sig_atomic_t g_stop_signal = 0;  // set by the handler only; read by the loop below

void on_stop_signal(int signal) { g_stop_signal = signal; }

// Installs SIGINT/SIGTERM handlers for the lifetime of a run and restores the previous ones.
class StopSignals {
  public:
    StopSignals() {
        g_stop_signal = 0;
        struct sigaction action {};
        action.sa_handler = on_stop_signal;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGINT, &action, &old_int_);
        ::sigaction(SIGTERM, &action, &old_term_);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    ~StopSignals() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }

  private:
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

std::string strip_ansi(const std::string& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\x1b' && i + 1 < line.size() && line[i + 1] == '[') {
            i += 2;
            while (i < line.size() && !(line[i] >= '@' && line[i] <= '~')) ++i;
            continue;
        }
        out += line[i];
    }
    return out;
}

std::string clock(double seconds) {
    char buf[16];
    const int s = static_cast<int>(seconds);
    std::snprintf(buf, sizeof buf, "%02d:%02d", s / 60, s % 60);
    return buf;
}

std::string duration(double seconds) {
    char buf[32];
    if (seconds < 60)
        std::snprintf(buf, sizeof buf, "%.1fs", seconds);
    else
        std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
    return buf;
}

}  // namespace

common::Result<MakepkgRun> run_makepkg_with_progress(const MakepkgRunOptions& options, std::ostream& progress) {
    auto program =
        common::find_program(options.argv.at(0), std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    if (!program) return program.error();
    std::ofstream log(options.log, std::ios::binary | std::ios::trunc);
    if (!log) return common::make_error(options.log.string() + ": cannot write the build log");

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return common::make_error(std::string("pipe: ") + std::strerror(errno));
    std::vector<std::string> args = options.argv;
    std::vector<char*> argp;
    for (auto& a : args) argp.push_back(a.data());
    argp.push_back(nullptr);
    const std::string exe = program->string();

    const StopSignals signals;
    const pid_t pid = ::fork();
    if (pid < 0) return common::make_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // Its own process group: the terminal's Ctrl-C reaches us, and we decide how makepkg stops.
        ::setpgid(0, 0);
        ::dup2(pipe_fds[1], STDOUT_FILENO);
        ::dup2(pipe_fds[1], STDERR_FILENO);
        const int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(126);
        ::execv(exe.c_str(), argp.data());
        ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(pipe_fds[1]);

    MakepkgRun run;
    const auto start = std::chrono::steady_clock::now();
    auto step_start = start;
    const auto since = [](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    const auto close_step = [&]() {
        if (run.steps.empty()) return;
        run.steps.back().seconds = since(step_start);
        progress << "  " << duration(run.steps.back().seconds) << '\n' << std::flush;
    };
    const auto handle_line = [&](std::string line) {
        line = strip_ansi(line);
        log << line << '\n';
        run.last_lines.push_back(line);
        if (run.last_lines.size() > options.tail_lines) run.last_lines.pop_front();
        if (options.echo) progress << "    | " << line << '\n';
        if (line.rfind("==> ", 0) != 0) return;
        close_step();
        step_start = std::chrono::steady_clock::now();
        run.steps.push_back({line.substr(4), 0});
        progress << "[" << clock(since(start)) << "] " << line.substr(4) << std::flush;
    };

    std::string pending;
    bool open = true;
    int sent = 0;  // escalation: SIGINT, then SIGTERM after 10 s, then SIGKILL after 20 s
    auto interrupted_at = std::chrono::steady_clock::now();
    while (open) {
        if (g_stop_signal && sent == 0) {
            run.interrupted = true;
            interrupted_at = std::chrono::steady_clock::now();
            ::kill(-pid, SIGINT);
            sent = 1;
            progress << "\ninterrupted: stopping makepkg (it removes its partial files)...\n" << std::flush;
        } else if (sent == 1 && since(interrupted_at) > 10) {
            ::kill(-pid, SIGTERM);
            sent = 2;
        } else if (sent == 2 && since(interrupted_at) > 20) {
            ::kill(-pid, SIGKILL);
            sent = 3;
        }
        pollfd pfd{pipe_fds[0], POLLIN, 0};
        const int ready = ::poll(&pfd, 1, 200);
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        char buf[8192];
        const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            open = false;
            break;
        }
        pending.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            handle_line(pending.substr(0, nl));
            pending.erase(0, nl + 1);
        }
    }
    if (!pending.empty()) handle_line(pending);
    ::close(pipe_fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    // Anything makepkg left running in its group (a build's background jobs) goes too.
    ::kill(-pid, SIGKILL);
    close_step();
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    log << "# ollama-pkg: makepkg exited with " << run.exit_code << " after " << duration(since(start)) << '\n';
    return run;
}

}  // namespace pkg
