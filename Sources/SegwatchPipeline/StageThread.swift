import Foundation

/// A pipeline stage running on a thread of its own, joined with `wait()`.
public final class StageThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in
            body()
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Waits for the stage's body to return. Call once.
    public func wait() { done.wait() }
}

/// Hands a value that is not `Sendable` (a decoder, an encoder) to the one stage thread that
/// uses it from then on; the creator must not touch it again until the stage is joined.
public struct UncheckedBox<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
