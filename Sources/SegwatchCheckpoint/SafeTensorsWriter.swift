#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SegwatchTensor

/// A tensor to write: float32 (segwatch's tensors), int32 (token ids) or int64 (indices, as
/// torch writes them).
public enum SafeTensorsValue: Sendable {
    case float32(Tensor)
    case int32(shape: [Int], values: [Int32])
    case int64(shape: [Int], values: [Int64])

    var shape: [Int] {
        switch self {
        case let .float32(tensor): tensor.shape
        case let .int32(shape, _), let .int64(shape, _): shape
        }
    }

    var count: Int { shape.reduce(1, *) }

    var byteCount: Int {
        switch self {
        case .int64: count * 8
        default: count * 4
        }
    }
}

/// Writes float32 tensors as a safetensors file (see the other overload).
public func writeSafeTensors(_ tensors: [(name: String, tensor: Tensor)], to path: String) throws {
    try writeSafeTensors(tensors.map { (name: $0.name, value: SafeTensorsValue.float32($0.tensor)) }, to: path)
}

/// Writes tensors as a safetensors file, atomically: a temporary file beside the target,
/// renamed over it once complete, so a reader never sees a partial file. `metadata` becomes the
/// header's `__metadata__` (strings only, as the format allows).
public func writeSafeTensors(_ tensors: [(name: String, value: SafeTensorsValue)], metadata: [String: String] = [:],
                             to path: String) throws {
    var header: [String: JSONValue] = [:]
    if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues { .string($0) }) }
    var offset = 0
    for (name, value) in tensors {
        guard header[name] == nil else { throw CheckpointError.unwritable(file: path, reason: "tensor \(quoted(name)) given twice") }
        let (dtype, values): (String, Int) = switch value {
        case .float32: ("F32", value.count)
        case let .int32(_, values): ("I32", values.count)
        case let .int64(_, values): ("I64", values.count)
        }
        guard values == value.count else {
            throw CheckpointError.unwritable(file: path, reason: "tensor \(quoted(name)) has \(values) values for shape \(value.shape)")
        }
        header[name] = .object(["dtype": .string(dtype), "shape": .array(value.shape.map { .number(Double($0)) }),
                                "data_offsets": .array([.number(Double(offset)), .number(Double(offset + value.byteCount))])])
        offset += value.byteCount
    }
    var json = try JSONValue.object(header).serialized()
    // The data starts 8-byte aligned, as the format's own writer pads it.
    json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
    var data = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for (_, value) in tensors {
        switch value {
        case let .float32(tensor):
            tensor.toArray().map { $0.bitPattern.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        case let .int32(_, values):
            values.map { $0.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        case let .int64(_, values):
            values.map { $0.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        }
    }
    do {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CheckpointError.unwritable(file: path, reason: systemReason(error))
    }
}
