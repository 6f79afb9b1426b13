import COpenBLAS
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

func markParallelRegion(_ inside: Bool) {
    pthread_setspecific(parallelRegionKey, inside ? UnsafeRawPointer(bitPattern: 1) : nil)
}

/// Calls `body` on disjoint chunks covering `0..<count`, on up to `CPUThreads.count` threads
/// (`WorkerPool`). Work smaller than `grain` items per thread, a call from inside another
/// `parallelFor`, or one made while another thread's is running, runs inline.
func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = insideParallelRegion ? 1 : min(CPUThreads.count, count / max(grain, 1))
    if threads > 1 {
        let chunk = (count + threads - 1) / threads
        let ran = WorkerPool.shared.run(chunks: threads) { thread in
            let start = thread * chunk, end = min(count, start + chunk)
            guard start < end else { return }
            markParallelRegion(true)
            body(start..<end)
            markParallelRegion(false)
        }
        if ran { return }
    }
    if count > 0 { body(0..<count) }
}
