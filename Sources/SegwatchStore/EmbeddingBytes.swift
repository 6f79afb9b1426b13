import Foundation

// Embeddings are stored as bytes, float32 (or float16) little-endian, so that any database
// holds them without an extension (Debian 12 packages no pgvector) and segwatch scores them itself.

/// `values` as float32 little-endian bytes.
func embeddingBytes(_ values: [Float]) -> Data {
    var data = Data(count: values.count * 4)
    data.withUnsafeMutableBytes { raw in
        for (i, value) in values.enumerated() { raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
    }
    return data
}

/// The floats of `data`, or nil when it is not a whole number of them.
func embeddingValues(_ data: Data) -> [Float]? {
    guard data.count % 4 == 0 else { return nil }
    return data.withUnsafeBytes { raw in
        (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }
}

/// `values` as float16 little-endian bytes: half the size, for embeddings that are shown and
/// compared but never ranked (a track's best observation; relative error under 5e-4).
func halfEmbeddingBytes(_ values: [Float]) -> Data {
    var data = Data(count: values.count * 2)
    data.withUnsafeMutableBytes { raw in
        for (i, value) in values.enumerated() { raw.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self) }
    }
    return data
}

/// The floats of float16 `data`, or nil when it is not a whole number of them.
func halfEmbeddingValues(_ data: Data) -> [Float]? {
    guard data.count % 2 == 0 else { return nil }
    return data.withUnsafeBytes { raw in
        (0..<(data.count / 2)).map { Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
    }
}
