import Foundation

/// A first-in first-out queue of at most `capacity` elements between threads.
///
/// `send` waits while the queue is full, so a slow consumer slows its producer (back-pressure
/// reaches the source) and nothing is buffered without bound. The stages of `run` are
/// threads, not tasks: they make blocking FFmpeg calls and long BLAS calls, which must not
/// hold Swift's cooperative threads.
public final class BoundedChannel<Element: Sendable>: @unchecked Sendable {
    public let capacity: Int
    private let condition = NSCondition()
    // Guarded by `condition`. A ring whose slot is emptied as its element is received: a
    // received element (a decoded frame, an encoder's output) is freed by its consumer, not
    // kept until the queue moves on. (A compacted array held up to 64 received frames and
    // their features, and a run's memory rose and fell by that much.)
    private var slots: [Element?]
    private var head = 0
    private var count = 0
    private var closed = false

    public init(capacity: Int) {
        precondition(capacity > 0, "a channel holds at least one element")
        self.capacity = capacity
        slots = Array(repeating: nil, count: capacity)
    }

    /// Appends `element`, waiting for room; false (and the element dropped) once closed.
    @discardableResult
    public func send(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !closed && count == capacity { condition.wait() }
        guard !closed else { return false }
        slots[(head + count) % capacity] = element
        count += 1
        condition.broadcast()
        return true
    }

    /// The oldest element, waiting for one; nil once the channel is closed and empty.
    public func receive() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while !closed && count == 0 { condition.wait() }
        guard count > 0 else { return nil }
        let element = slots[head].take()
        head = (head + 1) % capacity
        count -= 1
        condition.broadcast()
        return element
    }

    /// Ends the channel: senders stop at once, receivers get what is queued, then nil.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Ends the channel and drops what is queued: for a consumer that stops early.
    public func cancel() {
        condition.lock()
        closed = true
        slots = Array(repeating: nil, count: capacity)
        count = 0
        condition.broadcast()
        condition.unlock()
    }
}
