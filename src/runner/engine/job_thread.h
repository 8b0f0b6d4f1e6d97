// A thread that runs jobs one after another, in the order they were given, while the thread that gave
// them goes on: a GPU decode step's host rows, computed while the main thread queues the step's kernels
// (engine/gpu_transformer.cpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace runner {

class JobThread {
  public:
    JobThread();
    JobThread(const JobThread&) = delete;
    JobThread& operator=(const JobThread&) = delete;
    ~JobThread();  // the jobs given run first

    void submit(std::function<void()> job);
    // Returns once every job given so far has run; rethrows the first exception a job threw since the last
    // wait. A job that throws does not keep the later ones from running.
    void wait();
    // The same, giving up after `timeout`: whether every job given has run (and then rethrowing as wait()).
    bool wait_for(std::chrono::milliseconds timeout);

  private:
    void run();

    std::mutex mutex_;
    std::condition_variable given_, idle_;
    std::deque<std::function<void()>> jobs_;
    bool running_ = false, stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;  // last: starts once the rest is in place
};

}  // namespace runner
