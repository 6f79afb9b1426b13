import COpenBLAS
import Dispatch
import Glibc
import Synchronization

/// The number of threads the CPU kernels use.
///
/// segwatch owns its threads: OpenBLAS always runs single-threaded, and a large product is
/// split over `parallelFor` like any other kernel (see `sgemm`). With OpenBLAS's own pool, its
/// idle workers spin on `sched_yield` while the Swift kernels between products run, and on
/// two cores that cost a fifth of the encoder's time.
public enum CPUThreads {
    private static let current = Atomic<Int>(1)

    public static var count: Int { current.load(ordering: .relaxed) }

    /// Sets the thread count of the kernels (and keeps OpenBLAS on the calling thread).
    public static func set(_ count: Int) {
        current.store(max(1, count), ordering: .relaxed)
        openblas_set_num_threads(1)
    }
}

/// Marks threads running a `parallelFor` chunk, so that a kernel called from inside one (an
/// sgemm per attention head) runs on its own thread instead of splitting again.
private let parallelRegionKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// True on a thread that is running a `parallelFor` chunk.
var insideParallelRegion: Bool { pthread_getspecific(parallelRegionKey) != nil }

/// Calls `body` on disjoint chunks covering `0..<count`, on up to `CPUThreads.count` threads.
/// Work smaller than `grain` items per thread, or a call from inside another `parallelFor`,
/// runs inline.
func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = insideParallelRegion ? 1 : min(CPUThreads.count, count / max(grain, 1))
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
        guard start < end else { return }
        pthread_setspecific(parallelRegionKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(parallelRegionKey, nil) }
        body(start..<end)
    }
}
