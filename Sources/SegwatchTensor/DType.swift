/// Element types that checkpoints store. Compute is float32; the others are converted at load.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float64, float32, float16, bfloat16
    case int64, int32, int16, int8, uint8, bool

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    public var description: String { rawValue }
}

/// Converts `count` little-endian elements of `dtype` at `source` to float32 at `target`.
///
/// float16 and bfloat16 widen exactly; int64 and float64 round to the nearest float32.
public func convertToFloat32(_ source: UnsafeRawPointer, dtype: DType, count: Int,
                             into target: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .float32:
        target.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .float16:
        for i in 0..<count {
            target[i] = Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
        }
    case .bfloat16:
        for i in 0..<count {
            let bits = UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16
            target[i] = Float(bitPattern: bits)
        }
    case .float64:
        for i in 0..<count { target[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
    case .int64:
        for i in 0..<count { target[i] = Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
    case .int32:
        for i in 0..<count { target[i] = Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    case .int16:
        for i in 0..<count { target[i] = Float(Int16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
    case .int8:
        for i in 0..<count { target[i] = Float(source.load(fromByteOffset: i, as: Int8.self)) }
    case .uint8:
        for i in 0..<count { target[i] = Float(source.load(fromByteOffset: i, as: UInt8.self)) }
    case .bool:
        for i in 0..<count { target[i] = source.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
    }
}
