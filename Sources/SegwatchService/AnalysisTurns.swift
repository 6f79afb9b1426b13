import Dispatch
import Synchronization

/// The engine's analyses, one at a time, handed out in the order the cameras asked: when the
/// engine is saturated every camera gets an equal share, and below that each gets the rate it
/// asks for. A waiting camera is suspended, not blocking a thread, so an offline camera or a
/// long queue never holds up the others' I/O.
///
/// It also tells whether the engine makes progress: `busySeconds` is how long the current
/// analysis has run, which the watchdog compares with systemd's interval.
public final class AnalysisTurns: Sendable {
    private struct State {
        var busy = false
        var since: UInt64 = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var granted = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Waits for the engine, first come first served.
    public func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                guard state.busy else {
                    state.busy = true
                    state.since = DispatchTime.now().uptimeNanoseconds
                    state.granted += 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the engine to the camera that has waited longest.
    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.busy = false
                return nil
            }
            state.since = DispatchTime.now().uptimeNanoseconds
            state.granted += 1
            return state.waiting.removeFirst()
        }
        next?.resume()
    }

    /// Seconds the analysis under way has run (0 when the engine is idle).
    public var busySeconds: Double {
        state.withLock { state in
            state.busy ? Double(DispatchTime.now().uptimeNanoseconds - state.since) / 1e9 : 0
        }
    }

    /// Cameras waiting for the engine.
    public var queueDepth: Int { state.withLock { $0.waiting.count } }

    /// Analyses granted since the start.
    public var granted: Int { state.withLock { $0.granted } }
}
