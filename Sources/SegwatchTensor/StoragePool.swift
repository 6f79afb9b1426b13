import Synchronization

/// A cache of freed tensor buffers, keyed by element count.
///
/// Inference repeats the same shapes frame after frame, so a buffer freed by one frame is the
/// buffer the next frame asks for: after the first frame, steady-state inference allocates
/// (almost) nothing. The cache holds at most `limitBytes`; beyond that, freed buffers go back
/// to the system, so memory stays bounded when shapes change.
public final class StoragePool: Sendable {
    public static let shared = StoragePool(limitBytes: 2 << 30)

    public struct Statistics: Sendable, Equatable {
        /// Buffers taken from the system.
        public var allocations = 0
        /// Requests served from the cache.
        public var reuses = 0
        /// Bytes held in the cache now.
        public var cachedBytes = 0
    }

    private struct State {
        // Addresses, since raw pointers are not Sendable; each is owned by the cache alone.
        var free: [Int: [UInt]] = [:]
        var statistics = Statistics()
    }

    private let state = Mutex(State())
    public let limitBytes: Int

    public init(limitBytes: Int) { self.limitBytes = limitBytes }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    static let alignment = 64

    /// A 64-byte-aligned buffer for `count` floats, with unspecified contents.
    func take(count: Int) -> UnsafeMutableRawPointer {
        let reused: UInt? = state.withLock { state in
            guard let address = state.free[count]?.popLast() else {
                state.statistics.allocations += 1
                return nil
            }
            state.statistics.reuses += 1
            state.statistics.cachedBytes -= Self.bytes(count)
            return address
        }
        if let reused { return UnsafeMutableRawPointer(bitPattern: reused)! }
        return UnsafeMutableRawPointer.allocate(byteCount: Self.bytes(count), alignment: Self.alignment)
    }

    /// Returns a buffer from `take(count:)`.
    func give(_ pointer: UnsafeMutableRawPointer, count: Int) {
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { state in
            guard state.statistics.cachedBytes + Self.bytes(count) <= limitBytes else { return false }
            state.free[count, default: []].append(address)
            state.statistics.cachedBytes += Self.bytes(count)
            return true
        }
        if !kept { pointer.deallocate() }
    }

    /// Frees every cached buffer.
    public func drain() {
        let buffers = state.withLock { state in
            defer { state.free = [:]; state.statistics.cachedBytes = 0 }
            return state.free.values.flatMap { $0 }
        }
        for address in buffers { UnsafeMutableRawPointer(bitPattern: address)!.deallocate() }
    }

    private static func bytes(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }
}
