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
    /// so, or the connection fails (thrown, with what the daemon answered).
    public func read(until stop: () -> Bool, _ line: (Substring) -> Void) throws {
        let fd = try connectTCP(host: host, port: port)
        defer { close(fd) }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        request += "\r\n"
        guard request.utf8.withContiguousStorageIfAvailable({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.utf8.count else {
            throw ServiceError("http://\(host):\(port): cannot send the request: \(String(cString: strerror(errno)))")
        }
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
        // The head: status line and headers.
        var headEnd: Int?
        while headEnd == nil {
            headEnd = buffer.indices.dropLast(3).first { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }
            if headEnd == nil { guard try fill() else { return } }
            if buffer.count > 65536 { throw ServiceError("http://\(host):\(port): the response's head is over 64 KB") }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self).split(separator: "\r\n")
        buffer.removeSubrange(...(headEnd! + 3))
        let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        guard status == 200 else {
            let reason = status == 401 ? "the daemon wants its bearer token (--token-file)" : "expected 200"
            throw ServiceError("http://\(host):\(port)\(path): the daemon answered \(head.first.map(String.init) ?? "nothing"); \(reason)")
        }
        let chunked = head.contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        var body: [UInt8] = []
        var text: [UInt8] = []
        while true {
            if chunked {
                // size CRLF data CRLF, until a zero size.
                while let lineEnd = buffer.indices.dropLast().first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                    let sizeText = String(decoding: buffer[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                    guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                        throw ServiceError("http://\(host):\(port): a chunk size is not hexadecimal: \(quoted(sizeText))")
                    }
                    if size == 0 { return }
                    guard buffer.count >= lineEnd + 2 + size + 2 else { break }
                    body += buffer[(lineEnd + 2)..<(lineEnd + 2 + size)]
                    buffer.removeSubrange(..<(lineEnd + 2 + size + 2))
                }
            } else {
                body += buffer
                buffer.removeAll()
            }
            text += body
            body.removeAll()
            while let newline = text.firstIndex(of: UInt8(ascii: "\n")) {
                let sseLine = Substring(decoding: text[..<newline], as: UTF8.self)
                text.removeSubrange(...newline)
                if sseLine.hasPrefix("data: ") { line(sseLine.dropFirst(6)) }
            }
            guard try fill() else { return }
        }
    }
}
