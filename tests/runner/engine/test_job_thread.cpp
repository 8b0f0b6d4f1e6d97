// JobThread: jobs run on a thread of their own, in order, while the giver goes on; wait() returns once
// they have run and reports a failure once, after which the later jobs still ran.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runner/engine/job_thread.h"

using runner::JobThread;

TEST_CASE("job thread: jobs run in order on another thread while the giver goes on") {
    JobThread jobs;
    std::promise<void> all_given;
    auto given = all_given.get_future();
    std::vector<int> ran;
    bool first_waited = false;
    std::thread::id ran_on;
    jobs.submit([&] {
        ran_on = std::this_thread::get_id();
        // Blocks until the giver has given every job: a submit that ran its job in place would wait out the
        // 10 s here and fail.
        first_waited = given.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
        ran.push_back(0);
    });
    for (int i = 1; i < 50; ++i) jobs.submit([&ran, i] { ran.push_back(i); });
    all_given.set_value();
    jobs.wait();
    CHECK(first_waited);
    CHECK(ran_on != std::this_thread::get_id());
    REQUIRE(ran.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(ran[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("job thread: a job's exception comes back from wait once, and the later jobs still run") {
    JobThread jobs;
    int later = 0;
    jobs.submit([] { throw std::runtime_error("first"); });
    jobs.submit([] { throw std::runtime_error("second"); });
    jobs.submit([&] { ++later; });
    CHECK_THROWS_WITH_AS(jobs.wait(), "first", std::runtime_error);
    CHECK(later == 1);
    CHECK_NOTHROW(jobs.wait());
    jobs.submit([&] { ++later; });
    jobs.wait();
    CHECK(later == 2);
}

TEST_CASE("job thread: what was given runs before the thread ends") {
    int ran = 0;
    {
        JobThread jobs;
        for (int i = 0; i < 20; ++i)
            jobs.submit([&] {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                ++ran;
            });
    }
    CHECK(ran == 20);
}

TEST_CASE("job thread: wait_for gives up while a job runs, and reports it once it has") {
    JobThread jobs;
    std::promise<void> release;
    auto released = release.get_future();
    jobs.submit([&] {
        released.wait();
        throw std::runtime_error("late");
    });
    CHECK_FALSE(jobs.wait_for(std::chrono::milliseconds(20)));
    release.set_value();
    bool idle = false;
    CHECK_THROWS_WITH_AS(idle = jobs.wait_for(std::chrono::seconds(10)), "late", std::runtime_error);
    CHECK_FALSE(idle);
    CHECK(jobs.wait_for(std::chrono::milliseconds(1)));
}
