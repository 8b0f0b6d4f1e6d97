// A fixed set of worker threads for the CPU kernels: parallel_for splits [0, n) into contiguous chunks,
// a few per thread, which the threads take in turn, and returns when all are done: the work of a thread
// slowed by anything else on the machine (the GPU engine's own thread, a writeback) goes to the others,
// though the pass still ends only once every worker has checked in (so that none can run a chunk of the
// next pass with this one's job). Created once per model, not per kernel call.
// A decode step is many short passes (about seven a layer), so between passes the workers and the
// caller spin for a short while before they block: waking a sleeping thread costs tens of
// microseconds, which across 16 threads and every pass of a layer added up to a tenth of its time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace runner::cpu {

class ThreadPool {
  public:
    explicit ThreadPool(unsigned threads);  // 0: one per hardware thread
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    ~ThreadPool();

    unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
    // fn(begin, end) over disjoint ranges covering [0, n), on any thread, the calling one included.
    void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn);

  private:
    void work();
    void run_chunks();

    std::vector<std::thread> workers_;
    std::mutex mutex_;  // guards the sleeps only; a pass is published through generation_
    std::condition_variable start_, done_;
    const std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
    std::size_t n_ = 0, chunks_ = 0;
    std::atomic<std::size_t> next_chunk_ = 0;
    std::atomic<unsigned> generation_ = 0;  // bumped (release) once job_ and n_ are set
    std::atomic<unsigned> pending_ = 0;     // workers still on the current pass
    std::atomic<bool> stop_ = false;
};

}  // namespace runner::cpu
