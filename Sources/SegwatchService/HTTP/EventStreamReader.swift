import Foundation
import SegwatchCheckpoint

/// A reader of a daemon's `/api/events/stream` (server-sent events over HTTP/1.1), for
/// `segwatch tail --url`: plain TCP, the request written by hand, the chunked body and the
/// `data:` lines parsed here. Foundation's URLSession on Linux cannot hand over a response
/// that never ends line by line, and a client library would add minutes to every build for
/// one GET.
public struct EventStreamReader {
    public let host: String
    public let port: Int
    public let path: String
    public let token: String?

    /// `http://HOST:PORT[/path]`; without a path, the daemon's event stream.
    public init(url: String, token: String?) throws {
        guard url.hasPrefix("http://") else {
            throw ServiceError("\(quoted(url)): expected http://HOST:PORT (segwatch's API speaks plain HTTP; put TLS in front of it)")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard let (host, port) = HTTPConfig.parseListen(String(authority)) else {
            throw ServiceError("\(quoted(url)): expected http://HOST:PORT, e.g. http://127.0.0.1:8090")
        }
        (self.host, self.port, self.token) = (host, port, token)
        self.path = path.isEmpty || path == "/" ? "/api/events/stream" : String(path)
    }

    /// Connects, and calls `line` with each event line until the stream ends, `stop()` says
    /// so, or the connection fails (thrown; `HTTPRefusal` when the daemon answered but not 200).
    public func read(until stop: () -> Bool, _ line: (Substring) -> Void) throws {
        let fd = try openRequest("GET", host: host, port: port, path: path, token: token, headers: ["Accept: text/event-stream"])
        defer { close(fd) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        /// More bytes into `buffer`; false at the end of the connection.
        func fill() throws -> Bool {
            while !stop() {
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, 200) >= 0 || errno == EINTR else { throw ServiceError("http://\(host):\(port): \(String(cString: strerror(errno)))") }
                guard entry.revents != 0 else { continue }
                let count = recv(fd, &chunk, chunk.count, 0)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                buffer += chunk[..<count]
                return true
            }
            return false
        }
        var head = ResponseHead(buffer)
        while head == nil {
            guard try fill() else { return }
            if buffer.count > 65536 { throw ServiceError("http://\(host):\(port): the response's head is over 64 KB") }
            head = ResponseHead(buffer)
        }
        guard head!.status == 200 else {
            let reason = head!.status == 401 ? "the daemon wants its bearer token (--token-file)" : "expected 200"
            throw HTTPRefusal(description: "http://\(host):\(port)\(path): the daemon answered \(head!.statusLine); \(reason)")
        }
        buffer.removeSubrange(..<head!.bodyStart)
        var chunks = head!.chunked ? ChunkedDecoder() : nil
        var text: [UInt8] = []
        while true {
            if chunks != nil {
                do { text += try chunks!.decode(buffer) } catch { throw ServiceError("http://\(host):\(port): \(error)") }
                if chunks!.finished { return }
            } else {
                text += buffer
            }
            buffer.removeAll()
            while let newline = text.firstIndex(of: UInt8(ascii: "\n")) {
                let sseLine = Substring(decoding: text[..<newline], as: UTF8.self)
                text.removeSubrange(...newline)
                if sseLine.hasPrefix("data: ") { line(sseLine.dropFirst(6)) }
            }
            guard try fill() else { return }
        }
    }
}
