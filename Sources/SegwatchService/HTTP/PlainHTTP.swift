import Foundation
import SegwatchCheckpoint

// The few HTTP/1.1 client calls segwatch makes of its own daemon (`tail --url`, `bench serve`),
// over plain sockets: see `EventStreamReader` for why not URLSession or a client library.

/// The daemon answered, but not with 200: a wrong token or path, not a connection to retry.
public struct HTTPRefusal: Error, CustomStringConvertible {
    public let description: String
}

/// A connected TCP socket to `host:port` (the first address that answers).
func connectTCP(host: String, port: Int) throws -> Int32 {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
        throw ServiceError("http://\(host):\(port): cannot resolve \(host)")
    }
    defer { freeaddrinfo(list) }
    var failure = "no address"
    var entry: UnsafeMutablePointer<addrinfo>? = first
    while let address = entry {
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.ai_protocol)
        if fd >= 0 {
            if Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return fd }
            failure = String(cString: strerror(errno))
            close(fd)
        }
        entry = address.pointee.ai_next
    }
    throw ServiceError("http://\(host):\(port): cannot connect: \(failure)")
}

/// Connects and sends a bodiless request with `headers` (and the bearer `token`); returns the socket.
func openRequest(_ method: String, host: String, port: Int, path: String, token: String?, headers: [String]) throws -> Int32 {
    let fd = try connectTCP(host: host, port: port)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n" + headers.map { $0 + "\r\n" }.joined()
    if let token { request += "Authorization: Bearer \(token)\r\n" }
    request += "\r\n"
    guard request.utf8.withContiguousStorageIfAvailable({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.utf8.count else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw ServiceError("http://\(host):\(port): cannot send the request: \(reason)")
    }
    return fd
}

/// A response's status line and headers.
struct ResponseHead {
    var statusLine: String
    var status: Int
    var chunked: Bool
    /// Where the body starts in the bytes the head was read from.
    var bodyStart: Int

    /// The head at the start of `bytes`, or nil while its blank line has not arrived.
    init?(_ bytes: [UInt8]) {
        guard let end = bytes.indices.dropLast(3).first(where: {
            bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10
        }) else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n")
        statusLine = lines.first.map(String.init) ?? ""
        status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        chunked = lines.contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        bodyStart = end + 4
    }
}

/// A chunked body (size CRLF data CRLF, until a zero size), decoded as its bytes arrive.
struct ChunkedDecoder {
    private var pending: [UInt8] = []
    private(set) var finished = false

    /// The body bytes that the chunks completed by `bytes` hold.
    mutating func decode(_ bytes: some Sequence<UInt8>) throws -> [UInt8] {
        pending += bytes
        var body: [UInt8] = []
        while !finished, let lineEnd = pending.indices.dropLast().first(where: { pending[$0] == 13 && pending[$0 + 1] == 10 }) {
            let sizeText = String(decoding: pending[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw ServiceError("a chunk size is not hexadecimal: \(quoted(sizeText))")
            }
            if size == 0 { finished = true; break }
            guard pending.count >= lineEnd + 2 + size + 2 else { break }
            body += pending[(lineEnd + 2)..<(lineEnd + 2 + size)]
            pending.removeSubrange(..<(lineEnd + 2 + size + 2))
        }
        return body
    }
}

/// A response read whole.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var body: String
}

/// `GET path` (or another bodiless `method`) from `host:port`, the whole response read within
/// `timeout` seconds.
public func httpRequest(_ method: String = "GET", host: String, port: Int, path: String, token: String? = nil,
                        timeout: Double = 10) throws -> HTTPAnswer {
    let fd = try openRequest(method, host: host, port: port, path: path, token: token, headers: ["Connection: close", "Content-Length: 0"])
    defer { close(fd) }
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let now = DispatchTime.now().uptimeNanoseconds
        guard now < deadline else { throw ServiceError("http://\(host):\(port)\(path): no whole answer within \(timeout) s") }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, Int32(min((deadline - now) / 1_000_000, 1000)))
        if ready < 0 && errno != EINTR { throw ServiceError("http://\(host):\(port): \(String(cString: strerror(errno)))") }
        guard ready > 0 else { continue }
        let count = recv(fd, &chunk, chunk.count, 0)
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        data += chunk[..<count]
        guard data.count <= 64 << 20 else { throw ServiceError("http://\(host):\(port)\(path): the answer is over 64 MB") }
    }
    guard let head = ResponseHead(data) else { throw ServiceError("http://\(host):\(port)\(path): the answer has no HTTP head") }
    var body = Array(data[head.bodyStart...])
    if head.chunked {
        var chunks = ChunkedDecoder()
        do { body = try chunks.decode(body) } catch { throw ServiceError("http://\(host):\(port)\(path): \(error)") }
    }
    return HTTPAnswer(status: head.status, body: String(decoding: body, as: UTF8.self))
}

/// A bearer token from `file` (an API's `token_file`, or `tail --token-file`), whitespace trimmed.
public func readBearerToken(_ file: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: file) else { throw ServiceError("\(file): cannot read the bearer token") }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
