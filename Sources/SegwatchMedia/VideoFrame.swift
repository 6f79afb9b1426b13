/// How a decoded frame's pixels are laid out in memory.
public enum PixelLayout: String, Sendable, Hashable, CaseIterable {
    /// Packed 8-bit R, G, B; rows `rowBytes` apart (padded to 32 bytes).
    case rgb24
    /// Packed 8-bit B, G, R; rows `rowBytes` apart.
    case bgr24
    /// 8-bit luminance; rows `rowBytes` apart.
    case gray8
    /// Three float32 planes R, G, B in [0, 1], each `width * height` values, back to back:
    /// the `[3, H, W]` layout a model takes.
    case rgbPlanarFloat

    /// Bytes between the starts of two rows of one plane.
    func rowBytes(width: Int) -> Int {
        switch self {
        case .rgb24, .bgr24: return (width * 3 + 31) & ~31
        case .gray8: return (width + 31) & ~31
        case .rgbPlanarFloat: return width * 4
        }
    }

    /// Bytes the whole frame takes.
    func byteCount(width: Int, height: Int) -> Int {
        switch self {
        case .rgbPlanarFloat: return 3 * width * height * 4
        default: return rowBytes(width: width) * height
        }
    }
}

/// Memory that holds one frame's pixels, aligned for SIMD.
///
/// Ownership: the producer (a decoder) writes into storage only while no published frame
/// refers to it, which it checks with `isKnownUniquelyReferenced`; once a frame is published
/// its storage is read-only. That discipline is what makes this `@unchecked Sendable`.
public final class FrameStorage: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        bytes = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
    }

    deinit { bytes.deallocate() }
}

/// A decoded video frame, converted to the layout and size its decoder was asked for.
///
/// A value: it can cross tasks freely, and its pixels stay valid as long as it lives.
public struct VideoFrame: Sendable {
    /// Width and height in pixels after conversion.
    public let width: Int
    public let height: Int
    public let layout: PixelLayout
    /// Presentation time in seconds, in the source's own timeline; nil when the source has none.
    public let pts: Double?
    /// Position among the frames this decoder produced, from 0.
    public let index: Int
    let storage: FrameStorage

    /// Bytes between two rows of a plane.
    public var rowBytes: Int { layout.rowBytes(width: width) }

    /// The frame's bytes (`layout.byteCount` of them), valid inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.bytes, count: layout.byteCount(width: width, height: height)))
    }

    /// The pixels of an 8-bit packed frame as tight rows (`width * channels` bytes per row),
    /// dropping the row padding.
    public func packedBytes() -> [UInt8] {
        precondition(layout != .rgbPlanarFloat, "packedBytes() is for 8-bit layouts")
        let channels = layout == .gray8 ? 1 : 3
        let rowLength = width * channels
        var out = [UInt8](repeating: 0, count: rowLength * height)
        withUnsafeBytes { source in
            out.withUnsafeMutableBytes { target in
                for y in 0..<height {
                    let row = UnsafeRawBufferPointer(rebasing: source[y * rowBytes ..< y * rowBytes + rowLength])
                    UnsafeMutableRawBufferPointer(rebasing: target[y * rowLength ..< (y + 1) * rowLength])
                        .copyMemory(from: row)
                }
            }
        }
        return out
    }

    /// The planes of an `rgbPlanarFloat` frame: `[3, height, width]` float32.
    public func withFloatPlanes<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(layout == .rgbPlanarFloat, "withFloatPlanes is for rgbPlanarFloat frames")
        let floats = storage.bytes.bindMemory(to: Float.self, capacity: 3 * width * height)
        return try body(UnsafeBufferPointer(start: floats, count: 3 * width * height))
    }
}

/// A few frame buffers that the producer reuses once every frame that used one is gone,
/// so that steady-state decoding allocates nothing.
final class FramePool {
    private var buffers: [FrameStorage] = []
    private let limit: Int

    init(limit: Int = 8) { self.limit = limit }

    /// A storage of at least `capacity` bytes that no frame refers to.
    func take(capacity: Int) -> FrameStorage {
        for i in buffers.indices where isKnownUniquelyReferenced(&buffers[i]) {
            if buffers[i].capacity >= capacity { return buffers[i] }
            buffers[i] = FrameStorage(capacity: capacity)
            return buffers[i]
        }
        let storage = FrameStorage(capacity: capacity)
        if buffers.count < limit { buffers.append(storage) }
        return storage
    }
}
