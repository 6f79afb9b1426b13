import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM turned into an orderly stop.
///
/// The first signal sets a flag and runs the registered handlers (which interrupt blocking
/// reads); the command then finishes what it was doing, finalizes its files and exits 0.
/// What a later signal does depends on what is at stake: while outputs are being finalized
/// (`install(finalizing: true)`: `run`, `serve`, `record`) it is ignored, with a word on
/// stderr, because `timeout` and many supervisors send SIGTERM twice and an interrupted
/// finalization leaves a video without its index and tracks without their `end`; SIGKILL
/// stays the way out. Otherwise (`tail`, a download) it exits at once.
public final class ShutdownSignal: Sendable {
    public static let shared = ShutdownSignal()

    private let received = Atomic<Int32>(0)
    private let failure = Atomic<Bool>(false)
    private let handlers = Mutex<[@Sendable () -> Void]>([])
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Starts catching SIGINT and SIGTERM. Call once, from the main thread, before work starts.
    /// - Parameter finalizing: later signals are ignored instead of exiting at once.
    public func install(finalizing: Bool = false) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                if received.exchange(number, ordering: .relaxed) != 0 {
                    guard finalizing else { _exit(128 + number) }
                    FileHandle.standardError.write(Data("segwatch: still finishing the outputs; SIGKILL stops at once, losing what is not finalized\n".utf8))
                    return
                }
                for handler in handlers.withLock({ $0 }) { handler() }
            }
            source.resume()
            Self.sources.append(source)
        }
    }

    /// The signal received, if any.
    public var caughtSignal: Int32? {
        let value = received.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Stops as a signal would, for a failure inside (the HTTP API cannot bind): `failed` says so.
    public func stop() {
        failure.store(true, ordering: .relaxed)
        guard received.exchange(SIGTERM, ordering: .relaxed) == 0 else { return }
        for handler in handlers.withLock({ $0 }) { handler() }
    }

    /// Whether `stop()` was called for a failure.
    public var failed: Bool { failure.load(ordering: .relaxed) }

    /// Runs `handler` when the first signal arrives (at once if it already has).
    public func onSignal(_ handler: @escaping @Sendable () -> Void) {
        handlers.withLock { $0.append(handler) }
        if caughtSignal != nil { handler() }
    }
}
