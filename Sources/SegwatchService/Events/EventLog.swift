import Foundation
import Synchronization

/// Where event lines go: a JSON lines file, standard output, the events socket, an HTTP stream.
public protocol EventSink: AnyObject, Sendable {
    /// Takes one whole line, newline included. A sink that cannot take it throws an error that
    /// names it; one that drops what a slow reader cannot take (a socket) does not throw.
    func write(_ line: [UInt8]) throws
    /// Flushes and closes; later writes are ignored.
    func close() throws
}

/// The event stream of one run: stamps each record with the wall clock and a unique id, encodes
/// it as one line of JSON, and hands the line to every sink, one record at a time (frames and a
/// live source's states are written from different threads).
///
/// An `event_id` is this log's random id and the record's number in it (`9f2c41d07ab3e6c5-42`):
/// unique across cameras and restarts without any coordination, and ordered within a run.
public final class EventLog: Sendable {
    private let sinks: [any EventSink]
    private let clock: @Sendable () -> Date
    private let runID: String
    private let state = Mutex<(sequence: Int, closed: Bool)>((0, false))

    public init(sinks: [any EventSink], clock: @escaping @Sendable () -> Date = { Date() }) {
        self.sinks = sinks
        self.clock = clock
        var generator = SystemRandomNumberGenerator()
        runID = String(format: "%016llx", generator.next() as UInt64)
    }

    /// The log's wall clock now: what another output (the store) stamps a frame's records with,
    /// passed to `write(_:at:)` so that both show the same time.
    public var now: Date { clock() }

    /// Stamps, encodes and writes `record` to every sink; the first sink's error is thrown after
    /// the others have had the line, so one failing output does not starve the rest. `time` is
    /// the record's wall clock (default: `now`).
    public func write(_ record: some EventRecord, at time: Date? = nil) throws {
        var record = record
        try state.withLock { state in
            guard !state.closed else { return }
            state.sequence += 1
            record.time = isoTime(time ?? clock())
            record.event_id = "\(runID)-\(state.sequence)"
            let line = Array((try jsonString(record) + "\n").utf8)
            var failure: Error?
            for sink in sinks {
                do { try sink.write(line) } catch { failure = failure ?? error }
            }
            if let failure { throw failure }
        }
    }

    /// Records written so far.
    public var count: Int { state.withLock { $0.sequence } }

    /// Closes every sink (each gets its chance); the first error is thrown.
    public func close() throws {
        let sinks = state.withLock { state -> [any EventSink] in
            defer { state.closed = true }
            return state.closed ? [] : self.sinks
        }
        var failure: Error?
        for sink in sinks {
            do { try sink.close() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }
}
