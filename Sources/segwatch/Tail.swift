import ArgumentParser
import Foundation
import SegwatchService
import SegwatchStore
import Synchronization

/// `segwatch tail`: the events of a running `segwatch run --events-socket`, of a daemon's HTTP
/// API, or of every host of a fleet through its PostgreSQL store, filtered.
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the events of a running segwatch run (its --events-socket), a daemon (its HTTP API) or a whole fleet (its PostgreSQL store).",
        discussion: """
            Events are printed as the JSON lines `run` writes (or, with --pretty, one readable \
            line each). Filters: --type keeps one kind of event; --label keeps the segments of \
            a frame with that label (a frame with none is not printed) and the track events \
            whose label, or previous label, it is; --min-score keeps segments with at least \
            that score and tracks whose best score reaches it; --camera keeps one camera's. \
            `source` events pass every filter but --type and --camera.

            With --store postgres://..., the events of every run, daemon and worker that writes \
            to that store, on any host, as they happen (PostgreSQL's LISTEN/NOTIFY). With --since \
            T, the frame events the store kept from T on (runs with --store-frames, daemons with \
            [store] frames; without their event_id) come first, then the live ones; on a SQLite \
            store, --since prints the kept frame events and exits.

            When the socket or the daemon is not there yet, or it stops, tail waits and connects \
            again (every 0.1 s at first, then up to every 2 s), so it follows a daemon across \
            restarts. SIGINT or SIGTERM ends it.
            """)

    @Option(help: "The Unix socket of `segwatch run --events-socket` (or of a camera's events_socket).")
    var socket: String?

    @Option(help: "A daemon's HTTP API, http://HOST:PORT (its /api/events/stream).")
    var url: String?

    @Option(help: ArgumentHelp("A fleet's PostgreSQL store: the events of every host writing to it.", valueName: "postgres://..."))
    var store: String?

    @Option(help: ArgumentHelp("With --store: print the frame events kept from this time on first: ISO 8601 or a time ago (30m, 24h, 7d).", valueName: "time"))
    var since: String?

    @Option(help: "A file holding the daemon's bearer token (its [http] token_file), for an API off loopback.")
    var tokenFile: String?

    @Option(help: "Only events of this camera (their `source`).")
    var camera: String?

    @Option(help: "Only events of this type: frame, track or source.")
    var type: String?

    @Option(help: "Only segments and tracks with this label.")
    var label: String?

    @Option(help: "Only segments and tracks with at least this score.")
    var minScore: Double?

    @Flag(help: "One readable line per event instead of JSON.")
    var pretty = false

    func validate() throws {
        guard [socket, url, store].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give one of --socket PATH, --url http://HOST:PORT or --store postgres://...")
        }
        if let store, !isPostgresURL(store), since == nil {
            throw ValidationError("--store: live events are published by PostgreSQL stores only (postgres://...); give --since to print the frame events '\(store)' kept")
        }
        if let since {
            guard store != nil else { throw ValidationError("--since reads the frame events a store kept: give --store") }
            guard parseSearchTime(since, now: Date()) != nil else {
                throw ValidationError("--since '\(since)' is not a time: give ISO 8601 (2026-12-06T10:15:00Z or 2026-12-06) or a time ago (30m, 24h, 7d)")
            }
        }
        if let url {
            do { _ = try EventStreamReader(url: url, token: nil) } catch { throw ValidationError("--url: \(error)") }
        }
        if let socket, unixSocketAddress(socket) == nil {
            throw ValidationError("--socket: a Unix socket path is at most \(unixSocketPathLimit) bytes; this one has \(socket.utf8.count)")
        }
        if let type, !["frame", "track", "source"].contains(type) {
            throw ValidationError("--type must be frame, track or source, not '\(type)'")
        }
        if let minScore, !(0...1).contains(minScore) { throw ValidationError("--min-score must be in 0...1, not \(minScore)") }
    }

    func run() throws {
        let shutdown = ShutdownSignal.shared
        shutdown.install()
        if let url { return try followURL(url) }
        if let store { return try followStore(store) }
        let socket = self.socket!
        var delay = 0.1
        var said = false
        while shutdown.caughtSignal == nil {
            guard let fd = connectUnix(socket) else {
                if !said { printError("waiting for \(socket)") }
                said = true
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 2)
                continue
            }
            if said { printError("connected to \(socket)") }
            delay = 0.1
            readLines(fd) { line in
                if let text = filtered(line) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
            }
            close(fd)
            guard shutdown.caughtSignal == nil else { break }
            printError("\(socket) closed; waiting for it to come back")
            said = true
        }
    }

    /// The daemon's event stream, reconnected across its restarts; a refusal (a wrong token) is an error.
    private func followURL(_ url: String) throws {
        try runReporting {
            let token = try tokenFile.map(readBearerToken)
            let reader = try EventStreamReader(url: url, token: token)
            var delay = 0.1
            var said = false
            while ShutdownSignal.shared.caughtSignal == nil {
                do {
                    var connected = false
                    try reader.read(until: { ShutdownSignal.shared.caughtSignal != nil }) { line in
                        if !connected, said { printError("connected to \(url)") }
                        connected = true
                        delay = 0.1
                        if let text = filtered(line) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
                    }
                    guard ShutdownSignal.shared.caughtSignal == nil else { break }
                    if !said { printError("\(url) closed; waiting for it to come back") }
                } catch let refusal as HTTPRefusal {
                    throw refusal
                } catch {
                    if !said { printError("waiting for \(url): \(error)") }
                }
                said = true
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 2)
            }
        }
    }

    /// Every host's events through the store, reconnected whenever the connection is lost; with
    /// --since, the frame events it kept first.
    private func followStore(_ store: String) throws {
        try runReporting {
            @Sendable func print(_ line: String) {
                if let text = filtered(Substring(line)) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
            }
            guard isPostgresURL(store) else {
                // A SQLite store has no live feed: what it kept, and done.
                return try replay(try openExistingStore(store), until: nil, print)
            }
            let done = DispatchSemaphore(value: 0), listening = DispatchSemaphore(value: 0)
            let outcome = Mutex<Result<Void, any Error>>(.success(()))
            // Live lines wait while the kept ones print, so that they come after them.
            let held = Mutex<[String]?>(since == nil ? nil : [])
            let follower = Task {
                defer { done.signal(); listening.signal() }
                do {
                    try await EventFeed.follow(url: store, line: { line in
                        let now = held.withLock { held -> Bool in
                            guard held != nil else { return true }
                            held!.append(line)
                            return false
                        }
                        if now { print(line) }
                    }, state: { state in
                        printError(state)
                        if state.hasPrefix("listening") { listening.signal() }
                    })
                } catch {
                    outcome.withLock { $0 = .failure(error) }
                }
            }
            ShutdownSignal.shared.onSignal { follower.cancel() }
            if since != nil {
                listening.wait()
                // Kept up to the moment tail listened; a frame of that very moment may show twice.
                let replayed = Result { try replay(try openExistingStore(store), until: storeTime(Date()), print) }
                for line in held.withLock({ lines in defer { lines = nil }; return lines ?? [] }) { print(line) }
                if case let .failure(error) = replayed {
                    follower.cancel()
                    throw error
                }
            }
            done.wait()
            try outcome.withLock { $0 }.get()
        }
    }

    /// The frame events `store` kept from --since (to `until`), oldest first, a page at a time:
    /// each page from the last one's final millisecond on, less the lines of it already printed.
    private func replay(_ store: any SegmentStore, until: Int64?, _ print: (String) -> Void) throws {
        guard let since, let start = parseSearchTime(since, now: Date()) else { return }
        var filter = TrackFilter(camera: camera, since: storeTime(start), until: until)
        var printed = 0
        let page = 1000
        while ShutdownSignal.shared.caughtSignal == nil {
            let frames = try store.frames(filter, limit: printed + page)
            for frame in frames.dropFirst(printed) { print(frame.line) }
            guard frames.count == printed + page, let last = frames.last?.time else { return }
            if last == filter.since {
                printed = frames.count
            } else {
                (filter.since, printed) = (last, frames.reversed().prefix { $0.time == last }.count)
            }
        }
    }

    /// Calls `body` with each whole line read from `fd` until it closes or a signal arrives.
    private func readLines(_ fd: Int32, _ body: (Substring) -> Void) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while ShutdownSignal.shared.caughtSignal == nil {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 200) >= 0 || errno == EINTR else { return }
            guard entry.revents != 0 else { continue }
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            buffer += chunk[..<count]
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                body(Substring(decoding: buffer[..<newline], as: UTF8.self))
                buffer.removeSubrange(...newline)
            }
        }
    }

    /// The line as printed, or nil when the filters drop it.
    func filtered(_ line: Substring) -> String? {
        guard let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let kind = event["type"] as? String ?? ""
        if let type, kind != type { return nil }
        if let camera, event["source"] as? String != camera { return nil }
        var result = event
        var changed = false
        switch kind {
        case "frame":
            guard label != nil || minScore != nil else { break }
            let segments = event["segments"] as? [[String: Any]] ?? []
            let kept = segments.filter { segment in
                (label.map { $0 == segment["label"] as? String } ?? true) && (minScore.map { (segment["score"] as? Double ?? 0) >= $0 } ?? true)
            }
            guard !kept.isEmpty else { return nil }
            result["segments"] = kept
            changed = kept.count != segments.count
        case "track":
            if let label, event["label"] as? String != label, event["previous_label"] as? String != label { return nil }
            if let minScore, (event["best_score"] as? Double ?? 0) < minScore { return nil }
        default:
            break
        }
        if pretty { return prettyLine(result) }
        guard changed, let data = try? JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return String(line)
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func prettyLine(_ event: [String: Any]) -> String {
        let time = String(format: "%9.3f s", event["pts"] as? Double ?? 0)
        let source = event["source"] as? String ?? "?"
        switch event["type"] as? String {
        case "frame":
            let segments = (event["segments"] as? [[String: Any]] ?? []).map { segment in
                String(format: "#%d %@ %.2f", segment["track"] as? Int ?? 0, segment["label"] as? String ?? "?", segment["score"] as? Double ?? 0)
            }
            let key = event["keyframe"] as? Bool == true ? " key" : ""
            return "\(time)  \(source)  frame \(event["frame"] as? Int ?? 0)\(key): " + (segments.isEmpty ? "nothing" : segments.joined(separator: ", "))
        case "track":
            var text = "\(time)  \(source)  track #\(event["track"] as? Int ?? 0) \(event["event"] as? String ?? "?") \(event["label"] as? String ?? "?")"
            if let previous = event["previous_label"] as? String { text += " (was \(previous))" }
            if event["event"] as? String == "end" {
                text += String(format: ", best %.2f, %.1f s", event["best_score"] as? Double ?? 0, event["lifetime"] as? Double ?? 0)
            }
            return text
        default:
            let state = event["state"] as? String ?? "?"
            let error = (event["error"] as? String).map { ": \($0)" } ?? ""
            return "             \(source)  source \(state)\(error)"
        }
    }
}
