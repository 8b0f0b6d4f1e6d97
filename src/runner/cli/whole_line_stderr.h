// Standard error that reaches the reader a whole line at a time.
#pragma once

#include <memory>
#include <streambuf>

namespace runner_cli {

// While alive, std::cerr hands each line to the kernel in one write(2). std::cerr alone writes every
// operand as it comes, and Ollama, which reads the runner's stderr, matches "error:" per read: a load
// error often arrived as a bare "error:" without its message. A partial line waits for its newline
// (or this object's end).
class WholeLineStderr {
  public:
    WholeLineStderr();
    ~WholeLineStderr();
    WholeLineStderr(const WholeLineStderr&) = delete;
    WholeLineStderr& operator=(const WholeLineStderr&) = delete;

  private:
    class Buffer;
    std::unique_ptr<Buffer> buffer_;
    std::streambuf* previous_;
};

}  // namespace runner_cli
