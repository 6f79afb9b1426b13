import Glibc
import Synchronization

/// A cache of freed tensor buffers, keyed by size class.
///
/// Inference repeats the same shapes frame after frame, so a buffer freed by one frame is the
/// buffer the next frame asks for: after the first frame, steady-state inference allocates
/// (almost) nothing. Sizes are rounded up to classes (multiples of 64 floats, then 8 classes per
/// power of two, at most 12.5 % larger) so that shapes that vary a little from frame to frame
/// share buffers instead of each keeping its own. A large request whose class has no free buffer
/// takes the smallest free one up to twice its size: a batch of one prompt per track changes
/// size with the tracks, and without this each size would keep its own set of buffers until the
/// cache is full. The cache holds at most `limitBytes`: past it, the buffers returned longest
/// ago go back to the system, so buffers of shapes no longer in use do not crowd out those of
/// the current ones. Buffers of 64 KB or more are mappings of their own: one that goes back
/// leaves no hole in malloc's heap (a mask's 768 KB logits would otherwise fragment it, and
/// the resident size would creep up over a long run).
///
/// What the cache holds follows the work of late, not its peak: `trim()` (a stream calls it at
/// each keyframe) lets go of the buffers no request took since the last trim. The peak is
/// timing's: the image encoder of the next frame and the decoder's batches run at once on
/// their threads, and how their largest tensors overlap differs from frame to frame, so an
/// extra buffer now and then would otherwise stay for good (RunMemoryTests saw 32 MB steps
/// late in a run on a loaded machine), as would those of an hour with many tracks.
///
/// Each `CPUEngine` has one; tensors take their buffers from the current engine's.
public final class StoragePool: Sendable {

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
        /// The clock at the last `trim()`: a buffer returned before it has not been taken since.
        var trimmed = 0
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

    /// A 64-byte-aligned buffer for at least `count` floats, with unspecified contents, and the
    /// floats it really has (give it back with that capacity).
    func take(count: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        let count = Self.sizeClass(count)
        let reused: (UInt, Int)? = state.withLock { state in
            // Small buffers are cheap to allocate; only large ones look past their own class.
            var size = count
            let largest = count > 4096 ? 2 * count : count
            while size <= largest {
                if let address = state.free[size]?.popLast()?.address {
                    if state.free[size]!.isEmpty { state.free[size] = nil }
                    state.statistics.reuses += 1
                    state.statistics.cachedBytes -= Self.bytes(size)
                    return (address, size)
                }
                size = Self.sizeClass(size + 1)
            }
            // Else the smallest larger buffer: a cached buffer is resident already, a new one
            // adds to the resident size. (Without this, a rare frame that needs one more buffer
            // of some size grew the cache for good: RunMemoryTests saw 9 MB steps late in a run.)
            if count > 4096, let larger = state.free.keys.filter({ $0 > largest }).min(),
               let address = state.free[larger]?.popLast()?.address {
                if state.free[larger]!.isEmpty { state.free[larger] = nil }
                state.statistics.reuses += 1
                state.statistics.cachedBytes -= Self.bytes(larger)
                return (address, larger)
            }
            state.statistics.allocations += 1
            return nil
        }
        if let (address, size) = reused { return (UnsafeMutableRawPointer(bitPattern: address)!, size) }
        return (Self.allocate(count), count)
    }

    /// Returns a buffer from `take(count:)`, with the capacity it came with.
    func give(_ pointer: UnsafeMutableRawPointer, capacity count: Int) {
        guard Self.bytes(count) <= limitBytes else { return Self.release(pointer, count) }
        let evicted = state.withLock { state -> [(UInt, Int)] in
            state.clock += 1
            state.free[count, default: []].append((UInt(bitPattern: pointer), state.clock))
            state.statistics.cachedBytes += Self.bytes(count)
            var evicted: [(UInt, Int)] = []
            while state.statistics.cachedBytes > limitBytes {
                // The oldest buffer is the first of some class.
                let oldest = state.free.min { ($0.value.first?.returned ?? .max) < ($1.value.first?.returned ?? .max) }!.key
                evicted.append((state.free[oldest]!.removeFirst().address, oldest))
                if state.free[oldest]!.isEmpty { state.free[oldest] = nil }
                state.statistics.cachedBytes -= Self.bytes(oldest)
            }
            return evicted
        }
        for (address, count) in evicted { Self.release(UnsafeMutableRawPointer(bitPattern: address)!, count) }
    }

    /// Frees the cached buffers that no request took since the last trim (or since the pool
    /// was made). Returns the bytes freed.
    @discardableResult
    public func trim() -> Int {
        let stale = state.withLock { state -> [(UInt, Int)] in
            defer { state.trimmed = state.clock }
            var stale: [(UInt, Int)] = []
            for (count, buffers) in state.free {
                // In the order they were returned: the stale ones come first.
                let old = buffers.prefix { $0.returned <= state.trimmed }
                guard !old.isEmpty else { continue }
                stale += old.map { ($0.address, count) }
                state.free[count] = old.count == buffers.count ? nil : Array(buffers.dropFirst(old.count))
                state.statistics.cachedBytes -= old.count * Self.bytes(count)
            }
            return stale
        }
        for (address, count) in stale { Self.release(UnsafeMutableRawPointer(bitPattern: address)!, count) }
        return stale.reduce(0) { $0 + Self.bytes($1.1) }
    }

    /// Frees every cached buffer.
    public func drain() {
        let buffers = state.withLock { state in
            defer { state.free = [:]; state.statistics.cachedBytes = 0 }
            return state.free.flatMap { count, buffers in buffers.map { ($0.address, count) } }
        }
        for (address, count) in buffers { Self.release(UnsafeMutableRawPointer(bitPattern: address)!, count) }
    }

    private static func bytes(_ count: Int) -> Int { count * MemoryLayout<Float>.stride }

    /// Buffers from this size up are mapped, not taken from malloc.
    static let mappedBytes = 64 << 10

    private static func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        let bytes = bytes(count)
        guard bytes >= mappedBytes else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: alignment) }
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mapped != MAP_FAILED else {
            fatalError("out of memory: a tensor buffer of \(bytes) bytes could not be mapped (errno \(errno))")
        }
        return mapped
    }

    private static func release(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
        let bytes = bytes(count)
        if bytes >= mappedBytes { munmap(pointer, bytes) } else { pointer.deallocate() }
    }
}
