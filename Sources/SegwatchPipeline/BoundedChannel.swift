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
    // Guarded by `condition`.
    private var buffer: [Element] = []
    private var head = 0
    private var closed = false

    public init(capacity: Int) {
        precondition(capacity > 0, "a channel holds at least one element")
        self.capacity = capacity
    }

    /// Appends `element`, waiting for room; false (and the element dropped) once closed.
    @discardableResult
    public func send(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !closed && buffer.count - head >= capacity { condition.wait() }
        guard !closed else { return false }
        buffer.append(element)
        condition.broadcast()
        return true
    }

    /// The oldest element, waiting for one; nil once the channel is closed and empty.
    public func receive() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while !closed && head == buffer.count { condition.wait() }
        guard head < buffer.count else { return nil }
        let element = buffer[head]
        head += 1
        // Compact now and then instead of removing from the front each time.
        if head == buffer.count || head >= 64 {
            buffer.removeFirst(head)
            head = 0
        }
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
        buffer.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }
}
