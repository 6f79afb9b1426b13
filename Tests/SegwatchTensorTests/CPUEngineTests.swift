import Glibc
@testable import SegwatchTensor
import Synchronization
import Testing

/// The engine is a value: each has its own thread budget, workers and buffer pool, and the work
/// run under one uses those, not another engine's or a process-wide setting.
struct CPUEngineTests {
    /// The distinct threads that ran `parallelFor(8)` under `engine`.
    private func threads(under engine: CPUEngine) -> Int {
        let seen = Mutex<Set<UInt>>([])
        engine.run {
            parallelFor(8) { _ in
                seen.withLock { _ = $0.insert(UInt(pthread_self())) }
                usleep(2_000)  // long enough that one thread cannot take every chunk
            }
        }
        return seen.withLock { $0.count }
    }

    @Test func eachEngineKeepsItsOwnThreadBudget() {
        let one = CPUEngine(threads: 1), two = CPUEngine(threads: 2), three = CPUEngine(threads: 3)
        #expect(threads(under: one) == 1)
        #expect(threads(under: two) == 2)
        #expect(threads(under: three) == 3)
        // Outside any engine, work runs on the caller alone.
        #expect(CPUEngine.current === CPUEngine.standalone)
    }

    @Test func tensorsTakeBuffersFromTheCurrentEnginesPool() {
        let a = CPUEngine(threads: 1), b = CPUEngine(threads: 1)
        let before = (a.storage.statistics.allocations, b.storage.statistics.allocations)
        a.run { _ = Tensor(uninitialized: [1000]) }
        #expect(a.storage.statistics.allocations == before.0 + 1)
        #expect(b.storage.statistics.allocations == before.1)
        // The buffer went back to a's pool, and a second tensor of that size reuses it.
        a.run { _ = Tensor(uninitialized: [1000]) }
        #expect(a.storage.statistics.allocations == before.0 + 1 && a.storage.statistics.reuses >= 1)
    }

    @Test func nestedRunsRestoreTheOuterEngine() {
        let outer = CPUEngine(threads: 2), inner = CPUEngine(threads: 1)
        outer.run {
            inner.run { #expect(CPUEngine.current === inner) }
            #expect(CPUEngine.current === outer)
        }
    }

    // A backend's ops run under its engine whoever calls them: chunks of a large product run on
    // the backend engine's workers, and its result's buffer comes from that engine's pool.
    @Test func backendOpsRunUnderTheirEngine() {
        let engine = CPUEngine(threads: 2)
        let backend = CPUBackend(engine: engine)
        let x = Tensor(shape: [256, 256], values: (0..<65536).map { Float($0 % 7) })
        let before = engine.storage.statistics.allocations
        let y = backend.matmul(x, x)
        #expect(engine.storage.statistics.allocations > before)
        var expected: Float = 0
        for k in 0..<256 { expected += Float(k % 7) * Float((k * 256) % 7) }
        #expect(y.toArray()[0] == expected)
    }
}
