import Glibc
import Synchronization

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

/// Calls `body` on disjoint chunks covering `0..<count`, on up to the current engine's
/// threads (its `WorkerPool`), each chunk under that engine. Work smaller than `grain` items
/// per thread, a call from inside another `parallelFor`, or one made while another thread's
/// is running on the same engine, runs inline.
public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    let engine = CPUEngine.current
    let threads = insideParallelRegion ? 1 : min(engine.threads, count / max(grain, 1))
    if threads > 1 {
        let chunk = (count + threads - 1) / threads
        let ran = engine.workers.run(chunks: threads) { thread in
            let start = thread * chunk, end = min(count, start + chunk)
            guard start < end else { return }
            markParallelRegion(true)
            engine.run { body(start..<end) }
            markParallelRegion(false)
        }
        if ran { return }
    }
    if count > 0 { body(0..<count) }
}
