#include "runner/cli/whole_line_stderr.h"

#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <mutex>
#include <string>

namespace runner_cli {

namespace {

void write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // nowhere left to report to
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

class WholeLineStderr::Buffer : public std::streambuf {
  public:
    ~Buffer() override {
        if (!line_.empty()) write_all(STDERR_FILENO, line_);
    }

  protected:
    int_type overflow(int_type c) override {
        if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
        const char ch = traits_type::to_char_type(c);
        xsputn(&ch, 1);
        return c;
    }

    // Threads of the HTTP server log too: a line is appended and written under one lock.
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        const std::lock_guard lock(mutex_);
        line_.append(s, static_cast<std::size_t>(n));
        const auto end = line_.rfind('\n');
        if (end != std::string::npos) {
            write_all(STDERR_FILENO, line_.substr(0, end + 1));
            line_.erase(0, end + 1);
        }
        return n;
    }

    // std::cerr flushes after every operand (unitbuf): a partial line waits for the rest.
    int sync() override { return 0; }

  private:
    std::mutex mutex_;
    std::string line_;
};

WholeLineStderr::WholeLineStderr() : buffer_(std::make_unique<Buffer>()), previous_(std::cerr.rdbuf(buffer_.get())) {}

WholeLineStderr::~WholeLineStderr() { std::cerr.rdbuf(previous_); }

}  // namespace runner_cli
