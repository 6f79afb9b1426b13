// Event lines across a fleet: every host that writes to a PostgreSQL store publishes its event
// lines on one channel (NOTIFY), and `segwatch tail --store postgres://...` follows them all
// (LISTEN). A notification carries less than 8000 bytes and a frame's line can be longer, so a
// line goes in parts, each `SENDER SEQUENCE PART COUNT TEXT`, all in one transaction; parts of
// different senders may interleave, and the reader joins each sender's parts again. The feed is
// live only: a reader sees what is published while it listens (the store keeps the rest).
import Foundation
import Logging
import PostgresNIO

public enum EventFeed {
    /// The channel every host publishes on.
    public static let channel = "segwatch_events"
    /// The text of one part, in bytes (under the server's 8000 with the header).
    static let partBytes = 7900

    /// The payloads of `line`: its text split at character boundaries, each with its header.
    public static func payloads(_ line: String, sender: String, sequence: Int) -> [String] {
        let bytes = Array(line.utf8)
        var parts: [String] = []
        var start = 0
        repeat {
            var end = min(start + partBytes, bytes.count)
            // Never split a character: back up over UTF-8 continuation bytes.
            while end < bytes.count, end > start, bytes[end] & 0xC0 == 0x80 { end -= 1 }
            parts.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end
        } while start < bytes.count
        return parts.enumerated().map { "\(sender) \(sequence) \($0.offset + 1) \(parts.count) \($0.element)" }
    }

    /// Joins the parts of each sender's lines as they arrive.
    public struct Assembler: Sendable {
        private var pending: [String: (sequence: Int, parts: [String])] = [:]

        public init() {}

        /// The whole line that `payload` completes, if it does; a payload that is not a part
        /// (another program's NOTIFY on the channel) is ignored.
        public mutating func add(_ payload: String) -> String? {
            let fields = payload.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
            guard fields.count == 5, let sequence = Int(fields[1]), let part = Int(fields[2]), let count = Int(fields[3]),
                  count >= 1, (1...count).contains(part) else { return nil }
            let sender = String(fields[0]), text = String(fields[4])
            if count == 1 { return text }
            // A sender's parts arrive in order; a part out of place drops its line.
            let started: (sequence: Int, parts: [String])? = part == 1 ? (sequence, []) : pending[sender]
            guard var entry = started, entry.sequence == sequence, entry.parts.count == part - 1 else {
                pending[sender] = nil
                return nil
            }
            entry.parts.append(text)
            if part == count {
                pending[sender] = nil
                return entry.parts.joined()
            }
            pending[sender] = entry
            return nil
        }
    }

    /// Follows the channel of the database at `url` until the task is cancelled, calling `line`
    /// with each whole line and `state` with each change of the connection ("listening", or why
    /// it was lost); a lost connection is made again after 0.1 s, doubling up to 2 s.
    public static func follow(url: String, line: @Sendable (String) -> Void, state: @Sendable (String) -> Void) async throws {
        let (configuration, shown) = try postgresConfiguration(url)
        let logger = Logger(label: "segwatch.feed", factory: { _ in SwiftLogNoOpLogHandler() })
        var delay = 0.1, id = 0
        while !Task.isCancelled {
            id += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
                do {
                    try await connection.listen(on: channel) { notifications in
                        state("listening on \(shown)")
                        delay = 0.1
                        var assembler = Assembler()
                        for try await notification in notifications {
                            if let whole = assembler.add(notification.payload) { line(whole) }
                        }
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                guard !Task.isCancelled else { return }
                state("\(shown): \(postgresReason(error)); connecting again")
            }
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 2)
        }
    }
}

extension PostgresStore {
    /// Publishes `payloads` on `channel`, in one transaction: they are delivered together, in
    /// order, when it commits.
    public func notify(_ channel: String, payloads: [String]) throws(StoreError) {
        try transaction("publish events") { session in
            for payload in payloads { try session.execute("SELECT pg_notify(?, ?)", [channel, payload]) }
        }
    }
}
