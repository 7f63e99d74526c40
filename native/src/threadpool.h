// The addon's one process-wide thread pool, shared by every JS worker thread that loads the addon.
// Sized to the cores (std::thread::hardware_concurrency, or env DIFFACTOR_THREADS), created on
// first use. One parallel region runs at a time, process-wide: a second JS thread that asks for one
// waits, so six actors on two cores never run more than PoolSize() kernel threads at once.
// Not a task scheduler: no futures, no priorities, no nesting (a nested ParallelFor runs inline).
#pragma once

#include <cstdint>
#include <functional>

namespace dfx {

/** Number of threads that run a parallel region (the calling thread included). */
int PoolSize();

/**
 * Runs fn(t) for every t in [0, tasks), spread over the pool; the calling thread takes part and
 * the call returns when all tasks are done. Tasks are handed out dynamically, so each task must
 * write outputs no other task writes and must not depend on which thread runs it: then results are
 * bit-identical whatever the pool size and however many JS threads call at once.
 * tasks <= 1, a pool of one, or a call from inside a task runs inline with no synchronisation.
 */
void ParallelFor(int64_t tasks, const std::function<void(int64_t)>& fn);

}  // namespace dfx
