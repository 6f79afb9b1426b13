import CFFmpeg
import Dispatch
import Synchronization

/// Bounds every blocking FFmpeg call: a deadline for the current operation, and a stop switch.
///
/// FFmpeg polls the interrupt callback inside blocking I/O; when it returns 1 the call fails
/// with `AVERROR_EXIT`. This is what turns a camera that stops sending, or a server that
/// accepts and then says nothing, into an error within a known time, whatever the protocol.
public final class InterruptGate: Sendable {
    /// `DispatchTime.uptimeNanoseconds` after which calls are interrupted; 0 = no deadline.
    private let deadline = Atomic<UInt64>(0)
    private let stopped = Atomic<Bool>(false)

    public init() {}

    /// Interrupts calls that run past `seconds` from now.
    func arm(seconds: Double) {
        let now = DispatchTime.now().uptimeNanoseconds
        deadline.store(now + UInt64(max(seconds, 0) * 1e9), ordering: .relaxed)
    }

    /// Removes the deadline.
    func disarm() { deadline.store(0, ordering: .relaxed) }

    /// Interrupts every call from now on; used to stop a reader promptly.
    public func stop() { stopped.store(true, ordering: .relaxed) }

    /// Whether `stop()` was called.
    public var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// Whether the armed deadline has passed.
    var isPastDeadline: Bool {
        let d = deadline.load(ordering: .relaxed)
        return d != 0 && DispatchTime.now().uptimeNanoseconds > d
    }

    var shouldInterrupt: Bool { isStopped || isPastDeadline }

    /// The callback to install in an `AVFormatContext`. The context must not outlive the gate.
    var callback: AVIOInterruptCB {
        AVIOInterruptCB(
            callback: { opaque in
                guard let opaque else { return 0 }
                let gate = Unmanaged<InterruptGate>.fromOpaque(opaque).takeUnretainedValue()
                return gate.shouldInterrupt ? 1 : 0
            },
            opaque: Unmanaged.passUnretained(self).toOpaque()
        )
    }
}
