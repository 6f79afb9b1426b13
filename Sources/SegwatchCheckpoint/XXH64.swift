// XXH64 (xxHash's 64-bit hash, as its specification defines it): fast enough to fingerprint a
// gigabyte of weights in a fraction of a second, and a standard, so a digest segwatch prints can be
// checked with `xxhsum -H1`. Not cryptographic: it detects changes and corruption, not tampering.

public struct XXH64: Sendable {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    private let seed: UInt64
    private var lanes: (UInt64, UInt64, UInt64, UInt64)
    /// Input not yet consumed: always less than one 32-byte stripe.
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        lanes = (seed &+ Self.prime1 &+ Self.prime2, seed &+ Self.prime2, seed, seed &- Self.prime1)
        pending.reserveCapacity(32)
    }

    /// The hash of `bytes` in one call.
    public static func hash(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var hasher = XXH64(seed: seed)
        hasher.update(Array(bytes))
        return hasher.digest()
    }

    public static func hash(_ buffer: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var hasher = XXH64(seed: seed)
        hasher.update(buffer)
        return hasher.digest()
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ text: String) {
        update(Array(text.utf8))
    }

    /// Feeds `value`'s 8 little-endian bytes.
    public mutating func update(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { update($0) }
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard var rest = buffer.baseAddress, buffer.count > 0 else { return }
        var count = buffer.count
        length &+= UInt64(count)
        if !pending.isEmpty {
            let take = min(32 - pending.count, count)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: rest, count: take))
            rest += take
            count -= take
            guard pending.count == 32 else { return }
            pending.withUnsafeBytes { consumeStripes($0.baseAddress!, 1) }
            pending.removeAll(keepingCapacity: true)
        }
        consumeStripes(rest, count / 32)
        let tail = count % 32
        pending.append(contentsOf: UnsafeRawBufferPointer(start: rest + (count - tail), count: tail))
    }

    public func digest() -> UInt64 {
        var h: UInt64
        if length >= 32 {
            h = lanes.0.rotl(1) &+ lanes.1.rotl(7) &+ lanes.2.rotl(12) &+ lanes.3.rotl(18)
            for lane in [lanes.0, lanes.1, lanes.2, lanes.3] {
                h = (h ^ Self.round(0, lane)) &* Self.prime1 &+ Self.prime4
            }
        } else {
            h = seed &+ Self.prime5
        }
        h &+= length
        pending.withUnsafeBytes { tail in
            var i = 0
            while i + 8 <= tail.count {
                h ^= Self.round(0, tail.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
                h = h.rotl(27) &* Self.prime1 &+ Self.prime4
                i += 8
            }
            if i + 4 <= tail.count {
                h ^= UInt64(tail.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian) &* Self.prime1
                h = h.rotl(23) &* Self.prime2 &+ Self.prime3
                i += 4
            }
            while i < tail.count {
                h ^= UInt64(tail[i]) &* Self.prime5
                h = h.rotl(11) &* Self.prime1
                i += 1
            }
        }
        h ^= h >> 33
        h &*= Self.prime2
        h ^= h >> 29
        h &*= Self.prime3
        h ^= h >> 32
        return h
    }

    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        (accumulator &+ input &* prime2).rotl(31) &* prime1
    }

    private mutating func consumeStripes(_ start: UnsafeRawPointer, _ stripes: Int) {
        var (a, b, c, d) = lanes
        var p = start
        for _ in 0..<stripes {
            a = Self.round(a, p.loadUnaligned(as: UInt64.self).littleEndian)
            b = Self.round(b, p.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian)
            c = Self.round(c, p.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian)
            d = Self.round(d, p.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian)
            p += 32
        }
        lanes = (a, b, c, d)
    }
}

extension UInt64 {
    fileprivate func rotl(_ bits: UInt64) -> UInt64 { (self << bits) | (self >> (64 - bits)) }
}

/// A digest as 16 lowercase hex digits, as `xxhsum` prints it.
public func hexDigest(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
