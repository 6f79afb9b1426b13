import Synchronization

/// A cache of freed tensor buffers, keyed by size class.
///
/// Inference repeats the same shapes frame after frame, so a buffer freed by one frame is the
/// buffer the next frame asks for: after the first frame, steady-state inference allocates
/// (almost) nothing. Sizes are rounded up to classes (multiples of 64 floats, then 8 classes per
/// power of two, at most 12.5 % larger) so that shapes that vary a little from frame to frame,
/// such as a batch of one prompt per track, share buffers instead of each keeping its own. The
/// cache holds at most `limitBytes`: past it, the buffers returned longest ago go back to the
/// system, so buffers of shapes no longer in use do not crowd out those of the current ones.
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
        // Addresses, since raw pointers are not Sendable; each is owned by the cache alone. Each
        // class's buffers are in the order they were returned, with the clock at that time.
        var free: [Int: [(address: UInt, returned: Int)]] = [:]
        var clock = 0
        var statistics = Statistics()
    }

    private let state = Mutex(State())
    public let limitBytes: Int

    public init(limitBytes: Int) { self.limitBytes = limitBytes }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    static let alignment = 64

    /// The floats a buffer for `count` floats really has.
    public static func sizeClass(_ count: Int) -> Int {
        let count = max(count, 1)
        guard count > 4096 else { return (count + 63) / 64 * 64 }
        let step = (1 << (Int.bitWidth - 1 - count.leadingZeroBitCount)) / 8
        return (count + step - 1) / step * step
    }

    /// A 64-byte-aligned buffer for `count` floats, with unspecified contents.
    func take(count: Int) -> UnsafeMutableRawPointer {
        let count = Self.sizeClass(count)
        let reused: UInt? = state.withLock { state in
            guard let address = state.free[count]?.popLast()?.address else {
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
        let count = Self.sizeClass(count)
        guard Self.bytes(count) <= limitBytes else { return pointer.deallocate() }
        let evicted = state.withLock { state -> [UInt] in
            state.clock += 1
            state.free[count, default: []].append((UInt(bitPattern: pointer), state.clock))
            state.statistics.cachedBytes += Self.bytes(count)
            var evicted: [UInt] = []
            while state.statistics.cachedBytes > limitBytes {
                // The oldest buffer is the first of some class.
                let oldest = state.free.min { ($0.value.first?.returned ?? .max) < ($1.value.first?.returned ?? .max) }!.key
                evicted.append(state.free[oldest]!.removeFirst().address)
                if state.free[oldest]!.isEmpty { state.free[oldest] = nil }
                state.statistics.cachedBytes -= Self.bytes(oldest)
            }
            return evicted
        }
        for address in evicted { UnsafeMutableRawPointer(bitPattern: address)!.deallocate() }
    }

    /// Frees every cached buffer.
    public func drain() {
        let buffers = state.withLock { state in
            defer { state.free = [:]; state.statistics.cachedBytes = 0 }
            return state.free.values.flatMap { $0.map(\.address) }
        }
        for address in buffers { UnsafeMutableRawPointer(bitPattern: address)!.deallocate() }
    }

    private static func bytes(_ count: Int) -> Int { count * MemoryLayout<Float>.stride }
}
