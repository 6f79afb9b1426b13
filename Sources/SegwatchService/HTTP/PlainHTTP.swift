import Foundation
import SegwatchCheckpoint

// The few HTTP/1.1 client calls segwatch makes of its own daemon (`tail --url`, `bench serve`),
// over plain sockets: see `EventStreamReader` for why not URLSession or a client library.

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

/// A response read whole.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var body: String
}

/// `GET path` (or another bodiless `method`) from `host:port`, the whole response read within
/// `timeout` seconds.
public func httpRequest(_ method: String = "GET", host: String, port: Int, path: String, token: String? = nil,
                        timeout: Double = 10) throws -> HTTPAnswer {
    let fd = try connectTCP(host: host, port: port)
    defer { close(fd) }
    var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: 0\r\n"
    if let token { request += "Authorization: Bearer \(token)\r\n" }
    request += "\r\n"
    guard request.utf8.withContiguousStorageIfAvailable({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.utf8.count else {
        throw ServiceError("http://\(host):\(port): cannot send the request: \(String(cString: strerror(errno)))")
    }
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
    guard let headEnd = data.indices.dropLast(3).first(where: { data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10 }) else {
        throw ServiceError("http://\(host):\(port)\(path): the answer has no HTTP head")
    }
    let head = String(decoding: data[..<headEnd], as: UTF8.self).split(separator: "\r\n")
    let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    var body = Array(data[(headEnd + 4)...])
    if head.contains(where: { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }) {
        var decoded: [UInt8] = [], offset = 0
        while let lineEnd = body[offset...].indices.dropLast().first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
              let size = Int(String(decoding: body[offset..<lineEnd], as: UTF8.self).split(separator: ";").first?
                  .trimmingCharacters(in: .whitespaces) ?? "", radix: 16), size > 0, lineEnd + 2 + size <= body.count {
            decoded += body[(lineEnd + 2)..<(lineEnd + 2 + size)]
            offset = lineEnd + 2 + size + 2
            guard offset <= body.count else { break }
        }
        body = decoded
    }
    return HTTPAnswer(status: status, body: String(decoding: body, as: UTF8.self))
}
