import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM turned into an orderly stop.
///
/// The first signal sets a flag and runs the registered handlers (which interrupt blocking
/// reads); the command then finishes what it was doing, finalizes its files and exits 0.
/// A second signal exits at once, for a user who really means it.
final class ShutdownSignal: Sendable {
    static let shared = ShutdownSignal()

    private let received = Atomic<Int32>(0)
    private let handlers = Mutex<[@Sendable () -> Void]>([])
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Starts catching SIGINT and SIGTERM. Call once, from the main thread, before work starts.
    func install() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                if received.exchange(number, ordering: .relaxed) != 0 { _exit(128 + number) }
                for handler in handlers.withLock({ $0 }) { handler() }
            }
            source.resume()
            Self.sources.append(source)
        }
    }

    /// The signal received, if any.
    var caughtSignal: Int32? {
        let value = received.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Runs `handler` when the first signal arrives (at once if it already has).
    func onSignal(_ handler: @escaping @Sendable () -> Void) {
        handlers.withLock { $0.append(handler) }
        if caughtSignal != nil { handler() }
    }
}
