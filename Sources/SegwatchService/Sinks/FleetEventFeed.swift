import Foundation
import SegwatchStore
import Synchronization

/// The event lines published to a fleet's PostgreSQL store (`EventFeed`), for `segwatch tail
/// --store`. Like the events socket, it is a live view: a line it cannot publish (the database
/// is away) is counted and dropped, never an error of the run; the store keeps the tracks.
public final class FleetEventFeed: EventSink {
    private let store: PostgresStore
    private let sender: String
    private let state = Mutex<(sequence: Int, dropped: Int, closed: Bool)>((0, 0, false))

    public init(store: PostgresStore) {
        self.store = store
        var generator = SystemRandomNumberGenerator()
        sender = String(format: "%016llx", generator.next() as UInt64)
    }

    /// Lines that could not be published.
    public var dropped: Int { state.withLock { $0.dropped } }

    public func write(_ line: [UInt8]) throws {
        let sequence = state.withLock { state -> Int? in
            guard !state.closed else { return nil }
            state.sequence += 1
            return state.sequence
        }
        guard let sequence else { return }
        let text = String(decoding: line.last == UInt8(ascii: "\n") ? line.dropLast() : line[...], as: UTF8.self)
        do {
            try store.notify(EventFeed.channel, payloads: EventFeed.payloads(text, sender: sender, sequence: sequence))
        } catch {
            state.withLock { $0.dropped += 1 }
        }
    }

    public func close() throws {
        state.withLock { $0.closed = true }
    }
}
