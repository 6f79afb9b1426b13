import CCPUID
import Glibc
import Synchronization

/// The threads that run `parallelFor`'s chunks besides the caller's.
///
/// A worker that has finished a chunk spins for a while before it sleeps: a model runs hundreds
/// of parallel ops per second with short serial gaps between them, and waking a sleeping thread
/// takes a futex call and, on a virtual machine, the host's wake-up of an idle vCPU — measured
/// here at about 0.3 ms per op, a sixth of the CLIP image tower (GCD's `concurrentPerform`,
/// which this replaces, parks its workers at once). A worker asleep is woken by the next job.
///
/// One job at a time: a caller that finds the pool busy (another pipeline stage's op) runs its
/// whole range on its own thread, which is what two cores can give it anyway.
///
/// Each `CPUEngine` has one; its workers are started on first use and live as long as the
/// process, so engines are made once, not per frame.
final class WorkerPool: @unchecked Sendable {

    /// How long an idle worker spins before it sleeps.
    private static let spinNanoseconds: UInt64 = 1_000_000

    /// Bumped to publish a job; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    /// Workers that have not yet finished (or skipped) the current job.
    private let pending = Atomic<Int>(0)
    /// Workers asleep, or about to sleep, on `wakeup`.
    private let sleepers = Atomic<Int>(0)
    /// Held by the caller whose job is running.
    private let busy = Atomic<Bool>(false)
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeup: UnsafeMutablePointer<pthread_cond_t>

    // Written by the caller holding `busy` before it bumps `generation`, read by the workers after
    // they see it bumped, and left alone until every worker has decremented `pending`.
    private var job: ((Int) -> Void)?
    private var chunks = 0
    private var workers = 0

    init() {
        lock = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wakeup, nil)
    }

    /// Runs `body(0)` ... `body(chunks - 1)`, `body(0)` on the calling thread and the others on
    /// workers, and returns when all have returned; false (nothing run) when the pool is busy.
    func run(chunks: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(chunks - 1)
        withoutActuallyEscaping(body) { body in
            job = body
            self.chunks = chunks
            pending.store(workers, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(lock)
                pthread_cond_broadcast(wakeup)
                pthread_mutex_unlock(lock)
            }
            body(0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                // A worker the OS has descheduled needs this core more than the spin does.
                if spins & 1023 == 0 { sched_yield() } else { ccpuid_spin_pause() }
            }
            job = nil
        }
        return true
    }

    /// Starts workers until there are `count` (called holding `busy`); they live as long as the process.
    private func startWorkers(_ count: Int) {
        while workers < count {
            workers += 1
            let worker = WorkerContext(pool: self, index: workers, seen: generation.load(ordering: .relaxed))
            let context = Unmanaged.passRetained(worker).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { context in
                let worker = Unmanaged<WorkerContext>.fromOpaque(context!).takeRetainedValue()
                worker.pool.work(index: worker.index, seen: worker.seen)
                return nil
            }, context)
            precondition(status == 0, "WorkerPool: pthread_create failed (\(status))")
            pthread_detach(thread)
        }
    }

    /// A worker's life. `seen` is the generation before the first job it joins: the caller of
    /// that job starts it, and may publish the job before the thread runs.
    private func work(index: Int, seen: Int) {
        var seen = seen
        while true {
            seen = waitForJob(after: seen)
            if index < chunks, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Spins, then sleeps, until `generation` differs from `seen`; returns the new value.
    private func waitForJob(after seen: Int) -> Int {
        var start: UInt64?
        var spins = 0
        while true {
            let current = generation.load(ordering: .acquiring)
            if current != seen { return current }
            ccpuid_spin_pause()
            spins += 1
            guard spins & 255 == 0 else { continue }
            let now = monotonicNanoseconds()
            guard let started = start else { start = now; continue }
            if now - started < Self.spinNanoseconds { continue }
            // Announce the sleep before the last look at `generation`; the caller bumps it before
            // it looks at `sleepers` (both sequentially consistent), so one of the two sees the other.
            pthread_mutex_lock(lock)
            sleepers.add(1, ordering: .sequentiallyConsistent)
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                pthread_cond_wait(wakeup, lock)
            }
            sleepers.subtract(1, ordering: .sequentiallyConsistent)
            pthread_mutex_unlock(lock)
            start = nil
        }
    }
}

private final class WorkerContext {
    let pool: WorkerPool
    let index: Int
    let seen: Int

    init(pool: WorkerPool, index: Int, seen: Int) {
        self.pool = pool
        self.index = index
        self.seen = seen
    }
}

private func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
