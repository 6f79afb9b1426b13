import Dispatch
import Glibc
@testable import SegwatchTensor
import Synchronization
import SegwatchTestSupport
import Testing

/// `parallelFor` on the spinning worker pool: every index once, chunks on the workers also after
/// they have gone to sleep, several callers at once, and nested calls.
@Suite(.twoThreads) struct WorkerPoolTests {
    /// Runs `parallelFor(count)` and returns how many times each index was visited.
    private func visits(_ count: Int) -> [Int] {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        parallelFor(count) { range in
            for i in range { counts[i] += 1 }
        }
        return Array(counts)
    }

    @Test func everyIndexOnce() {
        for count in [2, 3, 17, 1000] {
            for _ in 0..<500 { #expect(visits(count) == [Int](repeating: 1, count: count)) }
        }
    }

    /// The threads that ran `chunks` chunks on a pool of its own (the shared one may be busy
    /// with another test's work, and then runs a caller's work inline).
    private func threads(_ pool: WorkerPool, chunks: Int) -> Set<UInt> {
        let seen = Mutex<[UInt]>([])
        #expect(pool.run(chunks: chunks) { _ in seen.withLock { $0.append(UInt(pthread_self())) } })
        let all = seen.withLock { $0 }
        #expect(all.count == chunks)
        return Set(all)
    }

    // Every chunk runs once, the first on the caller and the others on workers; and a job after
    // the workers have spun their millisecond and gone to sleep wakes them.
    @Test func chunksRunOnWorkersAlsoAfterTheySleep() {
        let pool = WorkerPool()
        for chunks in [2, 3, 2] {
            #expect(threads(pool, chunks: chunks).count == chunks)
        }
        for _ in 0..<5 {
            usleep(5_000)
            #expect(threads(pool, chunks: 2).count == 2)
        }
        // Fewer chunks than workers: the idle worker skips the job and the next still runs.
        #expect(threads(pool, chunks: 1).count == 1)
        #expect(threads(pool, chunks: 3).count == 3)
    }

    // Callers on several threads at once: the one that holds the pool shares its work, the
    // others run theirs inline; none loses or repeats an index, none waits forever.
    @Test func concurrentCallersEachGetTheirWholeRange() {
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for round in 0..<300 {
                let count = 10 + (caller * 7 + round) % 50
                if visits(count) != [Int](repeating: 1, count: count) { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    // A chunk's own parallelFor runs on its thread (a worker never waits for the pool it serves).
    @Test func nestedCallsRunInline() {
        let total = Atomic<Int>(0)
        parallelFor(8) { outer in
            for _ in outer {
                parallelFor(10) { inner in total.add(inner.count, ordering: .relaxed) }
            }
        }
        #expect(total.load(ordering: .relaxed) == 80)
        #expect(!insideParallelRegion)
    }
}
