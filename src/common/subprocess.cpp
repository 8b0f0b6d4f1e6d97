#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

extern char** environ;

namespace common {

namespace {

// An owned file descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

struct Pipe {
    Fd read;
    Fd write;
};

Result<Pipe> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return make_error(std::string("cannot create a pipe: ") + std::strerror(errno));
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

bool is_executable_file(const std::filesystem::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string env_key(const std::string& entry) { return entry.substr(0, entry.find('=')); }

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        const std::string entry = *e;
        bool replaced = false;
        for (const auto& x : extra) replaced = replaced || env_key(x) == env_key(entry);
        if (!replaced) env.push_back(entry);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Reads what is there; closes `fd` at end of file or on a read error.
void drain(Fd& fd, std::string& into) {
    char buf[8192];
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0)
        into.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
        fd.reset();
}

int decode_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// What the child writes to the status pipe when chdir or exec fails: which step and errno.
struct ChildFailure {
    int step = 0;  // 1 chdir, 2 exec, 3 stdin
    int error = 0;
};

[[noreturn]] void child_fail(int fd, int step) {
    const ChildFailure failure{step, errno};
    [[maybe_unused]] const ssize_t n = ::write(fd, &failure, sizeof failure);
    ::_exit(127);
}

}  // namespace

Result<std::filesystem::path> find_program(std::string_view program, std::string_view path_list) {
    if (program.empty()) return make_error("no program given");
    if (program.find('/') != std::string_view::npos) {
        const std::filesystem::path path(program);
        if (is_executable_file(path)) return path;
        return make_error(std::string(program) + ": no such program (not an executable file)");
    }
    std::size_t start = 0;
    while (start <= path_list.size()) {
        const std::size_t end = std::min(path_list.find(':', start), path_list.size());
        const std::string_view dir = path_list.substr(start, end - start);
        const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : std::string(dir)) / program;
        if (is_executable_file(candidate)) return candidate;
        start = end + 1;
    }
    return make_error(std::string(program) + ": program not found in PATH (" + std::string(path_list) + ")");
}

Result<SubprocessResult> run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options) {
    if (argv.empty()) return make_error("no program given");
    const char* path_env = std::getenv("PATH");
    auto program = find_program(argv[0], path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
    if (!program) return program.error();

    auto out_pipe = make_pipe();
    if (!out_pipe) return out_pipe.error();
    auto err_pipe = make_pipe();
    if (!err_pipe) return err_pipe.error();
    auto status_pipe = make_pipe();
    if (!status_pipe) return status_pipe.error();
    Fd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!dev_null.valid()) return make_error(std::string("cannot open /dev/null: ") + std::strerror(errno));

    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::string program_path = program->string();
    std::vector<std::string> args = argv;
    std::vector<std::string> env = child_environment(options.extra_env);
    std::vector<char*> argp = c_strings(args);
    std::vector<char*> envp = c_strings(env);
    const std::string cwd = options.cwd.string();

    const pid_t pid = ::fork();
    if (pid < 0) return make_error(std::string("cannot start ") + argv[0] + ": fork: " + std::strerror(errno));
    if (pid == 0) {
        const int status_fd = status_pipe->write.get();
        ::setpgid(0, 0);
        if (::dup2(dev_null.get(), STDIN_FILENO) < 0 || ::dup2(out_pipe->write.get(), STDOUT_FILENO) < 0 ||
            ::dup2(err_pipe->write.get(), STDERR_FILENO) < 0)
            child_fail(status_fd, 3);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) child_fail(status_fd, 1);
        ::execve(program_path.c_str(), argp.data(), envp.data());
        child_fail(status_fd, 2);
    }
    // Also set here, so a kill right after fork reaches the group even if the child has not run yet.
    ::setpgid(pid, pid);
    out_pipe->write.reset();
    err_pipe->write.reset();
    status_pipe->write.reset();

    ChildFailure failure;
    ssize_t got = 0;
    do got = ::read(status_pipe->read.get(), &failure, sizeof failure);
    while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof failure)) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        const char* what = failure.step == 1 ? "cannot enter " : failure.step == 2 ? "cannot run " : "cannot set up ";
        const std::string target = failure.step == 1 ? cwd : program_path;
        return make_error(what + target + " (for " + argv[0] + "): " + std::strerror(failure.error));
    }

    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    const bool limited = options.timeout.count() > 0;
    SubprocessResult result;
    bool reaped = false;
    int status = 0;
    std::optional<Clock::time_point> give_up;  // set once the child is gone: grandchildren may hold the pipes
    Fd& out_fd = out_pipe->read;
    Fd& err_fd = err_pipe->read;

    while (out_fd.valid() || err_fd.valid()) {
        int wait_ms = 100;
        if (limited && !result.timed_out) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(started + options.timeout - Clock::now());
            if (left.count() <= 0) {
                ::kill(-pid, SIGKILL);
                result.timed_out = true;
            } else {
                wait_ms = static_cast<int>(std::min<long long>(left.count(), 100));
            }
        }
        pollfd fds[2] = {{out_fd.get(), POLLIN, 0}, {err_fd.get(), POLLIN, 0}};
        const int ready = ::poll(fds, 2, wait_ms);
        if (ready < 0 && errno != EINTR) break;
        if (ready > 0) {
            if (out_fd.valid() && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) drain(out_fd, result.out);
            if (err_fd.valid() && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) drain(err_fd, result.err);
            continue;
        }
        if (!reaped) {
            const pid_t w = ::waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                give_up = Clock::now() + std::chrono::milliseconds(500);
            }
        } else if (give_up && Clock::now() > *give_up) {
            break;
        }
    }
    // The child closed its pipes but may still run: keep to the time limit while waiting for it.
    while (!reaped) {
        const pid_t w = ::waitpid(pid, &status, limited && !result.timed_out ? WNOHANG : 0);
        if (w == pid) {
            reaped = true;
        } else if (w < 0 && errno != EINTR) {
            break;
        } else if (w == 0) {
            if (Clock::now() - started >= options.timeout) {
                ::kill(-pid, SIGKILL);
                result.timed_out = true;
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
    }
    result.exit_code = decode_status(status);
    return result;
}

std::string describe_command(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& arg : argv) {
        if (!out.empty()) out += ' ';
        const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$`;&|<>*?()") == std::string::npos;
        if (plain) {
            out += arg;
            continue;
        }
        out += '\'';
        for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        out += '\'';
    }
    return out;
}

}  // namespace common
