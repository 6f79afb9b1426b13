import Synchronization

/// Every camera's event lines for the HTTP API: the latest ones kept for `/api/events?since=N`,
/// and each line handed to the subscribers of `/api/events/stream`.
///
/// Lines are numbered from 1 in the order written. A subscriber has a bounded backlog; one that
/// falls behind by more than that is disconnected (as the events socket drops a slow reader),
/// so a stalled HTTP client never holds the cameras up or grows memory.
public final class EventHub: EventSink {
    public static let kept = 1000
    public static let backlog = 4096

    private struct State {
        var next = 1
        /// The latest lines, oldest first: numbers `next - recent.count ..< next`.
        var recent: [[UInt8]] = []
        var subscribers: [Int: AsyncStream<(Int, [UInt8])>.Continuation] = [:]
        var subscriberID = 0
        var closed = false
    }
    private let state = Mutex(State())

    public init() {}

    public func write(_ line: [UInt8]) {
        // Numbered and handed over under the lock, so every subscriber sees the lines in order;
        // a yield never blocks (each subscriber's buffer is bounded).
        let behind = state.withLock { state -> [AsyncStream<(Int, [UInt8])>.Continuation] in
            let number = state.next
            state.next += 1
            state.recent.append(line)
            if state.recent.count > Self.kept { state.recent.removeFirst(state.recent.count - Self.kept) }
            var behind: [AsyncStream<(Int, [UInt8])>.Continuation] = []
            for (id, subscriber) in state.subscribers {
                switch subscriber.yield((number, line)) {
                case .dropped:
                    behind.append(subscriber)
                    state.subscribers[id] = nil
                case .terminated:
                    state.subscribers[id] = nil
                default:
                    break
                }
            }
            return behind
        }
        for subscriber in behind { subscriber.finish() }
    }

    /// Ends every subscription (the service is stopping).
    public func close() {
        let subscribers = state.withLock { state in
            defer { state.subscribers = [:]; state.closed = true }
            return state.subscribers
        }
        for subscriber in subscribers.values { subscriber.finish() }
    }

    /// The lines after number `since` that are still kept, and the number the next line will have.
    public func lines(since: Int) -> (lines: [[UInt8]], next: Int) {
        state.withLock { state in
            let first = state.next - state.recent.count
            let from = max(since + 1, first)
            return (Array(state.recent[(from - first)...]), state.next)
        }
    }

    /// The lines from now on, numbered, until the hub closes or the subscriber falls behind.
    public func subscribe() -> AsyncStream<(Int, [UInt8])> {
        let (stream, continuation) = AsyncStream.makeStream(of: (Int, [UInt8]).self, bufferingPolicy: .bufferingOldest(Self.backlog))
        let added = state.withLock { state -> Int? in
            guard !state.closed else { return nil }
            state.subscriberID += 1
            state.subscribers[state.subscriberID] = continuation
            return state.subscriberID
        }
        guard let id = added else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }
        return stream
    }

    /// Subscribers now.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}
