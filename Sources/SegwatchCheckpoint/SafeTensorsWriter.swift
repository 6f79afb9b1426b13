import Foundation
import SegwatchTensor

/// Writes float32 tensors as a safetensors file, atomically: a temporary file beside the target,
/// renamed over it once complete, so a reader never sees a partial file.
public func writeSafeTensors(_ tensors: [(name: String, tensor: Tensor)], to path: String) throws {
    var header: [String: Any] = [:]
    var offset = 0
    for (name, tensor) in tensors {
        guard header[name] == nil else { throw CheckpointError.unwritable(file: path, reason: "tensor '\(name)' given twice") }
        header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + tensor.count * 4]]
        offset += tensor.count * 4
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    // The data starts 8-byte aligned, as the format's own writer pads it.
    json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
    var data = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for (_, tensor) in tensors {
        let values = tensor.toArray().map { $0.bitPattern.littleEndian }
        values.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    do {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CheckpointError.unwritable(file: path, reason: error.localizedDescription)
    }
}
