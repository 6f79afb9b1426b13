import Dispatch
import Foundation
import Synchronization

/// `run --events-socket PATH`: a Unix stream socket that any number of readers attach to; each
/// gets every line published after it connected.
///
/// Publishing never blocks: lines go to each reader's backlog and one I/O thread writes them as
/// the reader takes them. A reader whose backlog passes `maximumBacklog` is dropped, so a slow
/// reader cannot stall the pipeline or grow memory without bound.
///
/// The socket is created with mode 0660 whatever the umask (owner and group read the events;
/// `group` sets the group), and a socket file left by a dead process is replaced, while one a
/// live process listens on is not.
public final class EventSocket: EventSink {
    public let path: String
    public static let maximumBacklog = 4 << 20
    private let listener: Int32
    /// A pipe that wakes the I/O thread when there is something new to write or it should stop.
    private let wake: (read: Int32, write: Int32)
    private let state = Mutex(State())
    private let stopped = DispatchSemaphore(value: 0)

    /// Bytes a reader has not taken yet: `bytes[start...]`.
    private struct Backlog {
        var bytes: [UInt8] = []
        var start = 0
        var count: Int { bytes.count - start }

        /// Marks `n` bytes taken; the buffer is compacted once half of it is taken.
        mutating func consume(_ n: Int) {
            start += n
            if start == bytes.count {
                bytes.removeAll(keepingCapacity: true)
                start = 0
            } else if start > bytes.count / 2 {
                bytes.removeSubrange(..<start)
                start = 0
            }
        }
    }

    private struct State {
        /// Each reader's socket and what it has not taken yet.
        var readers: [Int32: Backlog] = [:]
        var closing = false
        var dropped = 0
    }

    /// Creates the socket. A socket file nobody listens on (left by a process that died) is
    /// replaced; a live one, or a path that is not a socket, is an error.
    /// - Parameter group: the group that may read the events (nil: the process's).
    public init(path: String, group: String? = nil) throws {
        self.path = path
        guard var address = unixSocketAddress(path) else {
            throw ServiceError("\(path): a Unix socket path is at most \(unixSocketPathLimit) bytes; this one has \(path.utf8.count)")
        }
        var exists = stat()
        if lstat(path, &exists) == 0 {
            guard exists.st_mode & S_IFMT == S_IFSOCK else {
                throw ServiceError("\(path): exists and is not a socket; remove it or choose another path for the events socket")
            }
            guard !unixSocketIsListening(path) else {
                throw ServiceError("\(path): another process is serving events on this socket; stop it or choose another path")
            }
            unlink(path)
        }
        let groupID: gid_t? = try group.map { name in
            guard let entry = getgrnam(name) else { throw ServiceError("\(path): the socket's group '\(name)' does not exist") }
            return entry.pointee.gr_gid
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServiceError("\(path): cannot create a socket: \(String(cString: strerror(errno)))") }
        // The file bind creates takes the socket's mode less the umask: set to 0660 first, it is
        // never wider than that, even for an instant; chmod then makes it exactly 0660.
        fchmod(fd, 0o660)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o660) == 0, groupID.map({ chown(path, uid_t.max, $0) == 0 }) ?? true, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            if bound == 0 { unlink(path) }
            throw ServiceError("\(path): cannot listen on the events socket: \(reason)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            Glibc.close(fd)
            unlink(path)
            throw ServiceError("\(path): cannot create the socket's wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK) }
        listener = fd
        wake = (ends[0], ends[1])
        let thread = Thread { [self] in serve() }
        thread.name = "events-socket"
        thread.start()
    }

    /// Readers dropped for falling behind.
    public var droppedReaders: Int { state.withLock { $0.dropped } }

    /// Queues one whole line (with its newline) for every reader.
    public func write(_ line: [UInt8]) { publish(line) }

    public func close() { close(timeout: 2) }

    /// Queues one whole line (with its newline) for every reader.
    public func publish(_ line: some Collection<UInt8>) {
        let bytes = Array(line)
        let pending = state.withLock { state -> Bool in
            for fd in Array(state.readers.keys) {
                var sent = 0
                if state.readers[fd]!.count == 0 {
                    sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                    if sent < 0 {
                        guard errno == EAGAIN || errno == EWOULDBLOCK else {
                            drop(fd, &state)
                            continue
                        }
                        sent = 0
                    }
                }
                if sent < bytes.count { state.readers[fd]!.bytes += bytes[sent...] }
                if state.readers[fd]!.count > Self.maximumBacklog { drop(fd, &state, slow: true) }
            }
            return state.readers.values.contains { $0.count > 0 }
        }
        if pending { signalThread() }
    }

    /// Writes what the readers can take within `timeout` seconds, then closes them and removes
    /// the socket file.
    public func close(timeout: Double) {
        let first = state.withLock { state in
            defer { state.closing = true }
            return !state.closing
        }
        guard first else { return }
        signalThread()
        if stopped.wait(timeout: .now() + timeout) == .timedOut {
            // Readers that did not take their backlog in time lose it; then nothing is pending.
            state.withLock { state in
                for fd in state.readers.keys { Glibc.close(fd) }
                state.readers = [:]
            }
            signalThread()
            _ = stopped.wait(timeout: .now() + 2)
        }
        state.withLock { state in
            for fd in state.readers.keys { Glibc.close(fd) }
            state.readers = [:]
        }
        Glibc.close(listener)
        Glibc.close(wake.read)
        Glibc.close(wake.write)
        unlink(path)
    }

    private func signalThread() {
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    private func drop(_ fd: Int32, _ state: inout State, slow: Bool = false) {
        Glibc.close(fd)
        state.readers[fd] = nil
        if slow { state.dropped += 1 }
    }

    /// The I/O thread: accepts readers, writes their backlogs as they drain, notices hang-ups.
    private func serve() {
        defer { stopped.signal() }
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let (readers, closing) = state.withLock { state in (state.readers.map { ($0.key, $0.value.count > 0) }, state.closing) }
            if closing && !readers.contains(where: \.1) { return }
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            fds += readers.map { pollfd(fd: $0.0, events: Int16(POLLIN) | ($0.1 ? Int16(POLLOUT) : 0), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 1000) >= 0 || errno == EINTR else { return }
            if fds[1].revents != 0 { while read(wake.read, &scratch, scratch.count) > 0 {} }
            if fds[0].revents & Int16(POLLIN) != 0 {
                while case let fd = accept(listener, nil, nil), fd >= 0 {
                    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                    state.withLock { $0.readers[fd] = Backlog() }
                }
            }
            for entry in fds.dropFirst(2) where entry.revents != 0 {
                state.withLock { state in
                    guard state.readers[entry.fd] != nil else { return }
                    // Readers send nothing: readable means closed (or garbage, which is ignored).
                    if entry.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                        let got = recv(entry.fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
                        if got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                            drop(entry.fd, &state)
                            return
                        }
                    }
                    guard entry.revents & Int16(POLLOUT) != 0, state.readers[entry.fd]!.count > 0 else { return }
                    let start = state.readers[entry.fd]!.start
                    let sent = state.readers[entry.fd]!.bytes.withUnsafeBytes { bytes in
                        send(entry.fd, bytes.baseAddress! + start, bytes.count - start, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                    }
                    if sent < 0 {
                        if errno != EAGAIN && errno != EWOULDBLOCK { drop(entry.fd, &state) }
                    } else {
                        state.readers[entry.fd]!.consume(sent)
                    }
                }
            }
        }
    }
}

/// Whether a process accepts connections on the Unix socket at `path`.
func unixSocketIsListening(_ path: String) -> Bool {
    guard let fd = connectUnix(path) else { return errno == EAGAIN }  // a full backlog: somebody listens
    Glibc.close(fd)
    return true
}

/// A connected Unix stream socket, or nil when nothing listens at `path`.
public func connectUnix(_ path: String) -> Int32? {
    guard var address = unixSocketAddress(path) else { return nil }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else {
        Glibc.close(fd)
        return nil
    }
    return fd
}

/// The longest path a Unix socket address holds (`sun_path` less its terminating zero).
public let unixSocketPathLimit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

/// The address of the Unix socket at `path`, or nil when the path is too long for one.
public func unixSocketAddress(_ path: String) -> sockaddr_un? {
    guard path.utf8.count <= unixSocketPathLimit else { return nil }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { bytes in
        for (i, byte) in path.utf8.enumerated() { bytes[i] = byte }
    }
    return address
}
