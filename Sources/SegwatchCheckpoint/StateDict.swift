import Foundation
import SegwatchTensor

/// Where one tensor's elements are in a checkpoint file, as the file describes them.
public struct TensorEntry: Sendable, Hashable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Element strides (torch semantics).
    public let strides: [Int]
    /// Byte offset of the tensor's storage in the file.
    public let storageByteOffset: Int
    /// Elements in that storage.
    public let storageCount: Int
    /// Index of the tensor's first element in its storage.
    public let storageOffset: Int
}

/// A checkpoint's tensors by name, memory-mapped: safetensors or a PyTorch `torch.save` file.
///
/// Values are read on demand and converted to float32; float32 tensors whose data is aligned
/// are zero-copy views of the mapping. Loading is strict: `tensor(_:shape:)` checks the shape,
/// `checkAllUsed` rejects keys a model did not ask for.
public final class StateDict: Sendable {
    public let path: String
    /// Names in the order the file lists them.
    public let names: [String]
    public let entries: [String: TensorEntry]
    /// A safetensors header's `__metadata__` (empty for PyTorch files).
    public let metadata: [String: String]
    let file: MappedFile

    init(path: String, file: MappedFile, entries: [TensorEntry], metadata: [String: String] = [:]) throws {
        self.path = path
        self.metadata = metadata
        self.file = file
        var byName: [String: TensorEntry] = [:]
        for entry in entries {
            guard byName[entry.name] == nil else {
                throw CheckpointError.malformed(file: path, reason: "tensor \(quoted(entry.name)) appears twice")
            }
            try StateDict.validate(entry, fileSize: file.count, path: path)
            byName[entry.name] = entry
        }
        names = entries.map(\.name)
        self.entries = byName
    }

    /// Opens `path`, choosing the reader from the file's first bytes (a zip is a PyTorch file).
    public static func load(_ path: String) throws -> StateDict {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let MappedFile.Failure.open(_, code) {
            throw CheckpointError.unreadable(file: path, reason: String(cString: strerror(code)))
        } catch {
            throw CheckpointError.unreadable(file: path, reason: "\(error)")
        }
        let bytes = file.buffer
        if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 0x03, bytes[3] == 0x04 {
            return try TorchCheckpoint.read(file, path: path)
        }
        return try SafeTensors.read(file, path: path)
    }

    /// Checks that every element the entry addresses lies inside its storage, and the storage inside the file.
    static func validate(_ entry: TensorEntry, fileSize: Int, path: String) throws {
        func fail(_ reason: String) -> CheckpointError { .malformed(file: path, reason: "tensor \(quoted(entry.name)): \(reason)") }
        guard entry.shape.count == entry.strides.count else { throw fail("shape \(entry.shape) and strides \(entry.strides) differ in rank") }
        guard entry.shape.allSatisfy({ $0 >= 0 }), entry.strides.allSatisfy({ $0 >= 0 }) else {
            throw fail("negative size or stride in shape \(entry.shape), strides \(entry.strides)")
        }
        guard entry.storageCount >= 0, entry.storageOffset >= 0, entry.storageByteOffset >= 0 else { throw fail("negative offset") }
        let (storageBytes, overflow) = entry.storageCount.multipliedReportingOverflow(by: entry.dtype.byteCount)
        guard !overflow, entry.storageByteOffset <= fileSize, storageBytes <= fileSize - entry.storageByteOffset else {
            throw fail("its \(entry.storageCount) \(entry.dtype) elements at byte \(entry.storageByteOffset) run past the end of the \(fileSize)-byte file")
        }
        var count = 1
        var last = entry.storageOffset
        for (size, stride) in zip(entry.shape, entry.strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: size)
            guard !o1 else { throw fail("shape \(entry.shape) overflows") }
            count = c
            if size > 0 {
                let (span, o2) = (size - 1).multipliedReportingOverflow(by: stride)
                let (next, o3) = last.addingReportingOverflow(span)
                guard !o2, !o3 else { throw fail("strides \(entry.strides) overflow") }
                last = next
            }
        }
        // Only broadcast views (a zero stride) address more elements than their storage holds;
        // cap those so a hostile shape cannot make a reader allocate without bound.
        if count > entry.storageCount && (!entry.strides.contains(0) || count > 1 << 28) {
            throw fail("shape \(entry.shape) has \(count) elements; its storage has \(entry.storageCount)")
        }
        if count > 0 && last >= entry.storageCount {
            throw fail("shape \(entry.shape) with strides \(entry.strides) from element \(entry.storageOffset) needs \(last + 1) elements; the storage has \(entry.storageCount)")
        }
    }

    /// The tensor `key` as float32.
    public func tensor(_ key: String) throws -> Tensor {
        guard let entry = entries[key] else { throw CheckpointError.missingTensor(file: path, key: key) }
        let base = file.bytes! + entry.storageByteOffset
        if entry.dtype == .float32, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            let storage = TensorStorage(borrowing: base.assumingMemoryBound(to: Float.self), count: entry.storageCount, owner: file)
            return Tensor(shape: entry.shape, strides: entry.strides, offset: entry.storageOffset, storage: storage)
        }
        let storage = TensorStorage(count: entry.storageCount)
        convertToFloat32(base, dtype: entry.dtype, count: entry.storageCount, into: storage.pointer)
        return Tensor(shape: entry.shape, strides: entry.strides, offset: entry.storageOffset, storage: storage)
    }

    /// The tensor `key` as float32, which must have `shape`.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        guard let entry = entries[key] else { throw CheckpointError.missingTensor(file: path, key: key) }
        guard entry.shape == shape else {
            throw CheckpointError.shapeMismatch(file: path, key: key, expected: shape, actual: entry.shape)
        }
        return try tensor(key)
    }

    /// Throws when the file holds tensors outside `used`.
    public func checkAllUsed(_ used: Set<String>) throws {
        let extra = names.filter { !used.contains($0) }
        if !extra.isEmpty { throw CheckpointError.unexpectedTensors(file: path, keys: extra) }
    }
}
