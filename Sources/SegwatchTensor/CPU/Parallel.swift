import COpenBLAS
import Dispatch
import Synchronization

/// The number of threads the CPU kernels use, shared with OpenBLAS.
///
/// Kernels and sgemm calls run one after the other, never at the same time, so both may use
/// every thread without oversubscribing the cores: an op either runs OpenBLAS (with its own
/// threads) or a Swift kernel split over `parallelFor`, not both at once.
public enum CPUThreads {
    private static let current = Atomic<Int>(1)

    public static var count: Int { current.load(ordering: .relaxed) }

    /// Sets the thread count of the Swift kernels and OpenBLAS together.
    public static func set(_ count: Int) {
        let count = max(1, count)
        current.store(count, ordering: .relaxed)
        openblas_set_num_threads(Int32(count))
    }
}

/// Calls `body` on disjoint chunks covering `0..<count`, on up to `CPUThreads.count` threads.
/// Work smaller than `grain` items per thread runs inline.
func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = min(CPUThreads.count, count / max(grain, 1))
    if threads <= 1 {
        if count > 0 { body(0..<count) }
        return
    }
    let chunk = (count + threads - 1) / threads
    // The chunks are disjoint and `concurrentPerform` returns only when all are done, so the
    // body's captures (raw pointers into buffers this op owns) never outlive the call.
    nonisolated(unsafe) let body = body
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
        let start = thread * chunk
        let end = min(count, start + chunk)
        if start < end { body(start..<end) }
    }
}

/// Runs `body` with OpenBLAS on one thread, for code that parallelizes above the products
/// itself (one sgemm per thread); restores the shared count afterwards.
func withSingleThreadedBLAS<T>(_ body: () -> T) -> T {
    let threads = CPUThreads.count
    guard threads > 1 else { return body() }
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(Int32(threads)) }
    return body()
}
