import COpenBLAS
import Glibc

/// The execution state of CPU inference: how many threads the kernels may use, the workers
/// that run their parallel chunks, and the cache of freed tensor buffers.
///
/// An engine is a value that is passed in, not a process-wide setting: one process can run
/// several streams on one engine (one loaded set of models, one core budget), and a test can
/// make an engine of its own. Kernels find the engine they run under through `current`, which
/// `run(_:)` sets for the calling thread (and `parallelFor` for its workers); `CPUBackend`
/// enters its engine around every op, so model code never names it.
///
/// OpenBLAS always runs single-threaded: a large product is split over `parallelFor` like any
/// other kernel (see `sgemm`). With OpenBLAS's own pool, its idle workers spin on
/// `sched_yield` while the Swift kernels between products run, and on two cores that cost a
/// fifth of the SAM encoder's time.
public final class CPUEngine: Sendable {
    /// Threads a parallel op is split over at most (the caller's included).
    public let threads: Int
    /// Freed tensor buffers, kept for the next frame's tensors of the same shapes.
    public let storage: StoragePool
    let workers: WorkerPool

    /// - Parameters:
    ///   - threads: the core budget, 1...256.
    ///   - storageLimitBytes: what the buffer cache may hold.
    public init(threads: Int, storageLimitBytes: Int = 2 << 30) {
        self.threads = min(max(1, threads), 256)
        storage = StoragePool(limitBytes: storageLimitBytes)
        workers = WorkerPool()
        openblas_set_num_threads(1)
    }

    /// The engine of work done outside any engine's `run`: one thread, so that nothing runs
    /// wider than its caller asked for.
    public static let standalone = CPUEngine(threads: 1)

    /// The engine the calling thread runs under: the innermost `run(_:)`, else `standalone`.
    public static var current: CPUEngine {
        guard let engine = pthread_getspecific(currentEngineKey) else { return taskEngine ?? standalone }
        return Unmanaged<CPUEngine>.fromOpaque(engine).takeUnretainedValue()
    }

    /// The engine of the async `run(_:)`: a task may move between threads, so it is a task
    /// local; threads (stages, workers) use the cheaper thread-specific value.
    @TaskLocal private static var taskEngine: CPUEngine?

    /// Runs async `body` under this engine (test scopes; a stage thread uses the sync `run`).
    public func run<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await Self.$taskEngine.withValue(self) { try await body() }
    }

    /// Runs `body` on the calling thread under this engine (nested calls restore the outer one).
    public func run<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let previous = pthread_getspecific(currentEngineKey)
        // Unretained: the caller holds the engine for the duration of the call.
        pthread_setspecific(currentEngineKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(currentEngineKey, previous) }
        return try body()
    }
}

private let currentEngineKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
