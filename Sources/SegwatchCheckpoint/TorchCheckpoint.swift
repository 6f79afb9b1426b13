import SegwatchTensor

/// PyTorch's `torch.save` zip format: `<folder>/data.pkl` (the pickled state dict),
/// `<folder>/data/<key>` (one raw little-endian storage per key) and `<folder>/byteorder`.
/// The folder is whatever the writer chose; it is found, not assumed.
enum TorchCheckpoint {
    static func read(_ file: MappedFile, path: String) throws -> StateDict {
        func fail(_ reason: String) -> CheckpointError { .malformed(file: path, reason: reason) }
        let bytes = file.buffer
        let archive = try ZipArchive(bytes, path: path)
        guard let pickle = archive.entries.first(where: { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }) else {
            throw fail("no data.pkl in the archive (not a torch.save file)")
        }
        let folder = String(pickle.name.dropLast("data.pkl".count))
        var files: [String: ZipArchive.Entry] = [:]
        for entry in archive.entries where entry.name.hasPrefix(folder) {
            files[String(entry.name.dropFirst(folder.count))] = entry
        }
        if let order = files["byteorder"] {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[order.dataOffset ..< order.dataOffset + order.size]), as: UTF8.self)
            guard text == "little" else { throw fail("byte order '\(text)'; only little-endian files are supported") }
        }

        var machine = PickleMachine(UnsafeRawBufferPointer(rebasing: bytes[pickle.dataOffset ..< pickle.dataOffset + pickle.size]), path: path)
        let root = try machine.run { pid in
            // ('storage', storage_type, key, location, numel)
            guard case let .tuple(fields) = pid, fields.count == 5, case .string("storage") = fields[0],
                  case let .global(.storageType(dtype)) = fields[1], case let .string(key) = fields[2],
                  case let .int(count) = fields[4], count >= 0 else {
                throw fail("a persistent id is not a ('storage', type, key, location, numel) tuple")
            }
            return .storage(dtype: dtype, key: key, count: count)
        }
        guard case let .dict(dict) = root else { throw fail("the pickle holds no dict of tensors") }

        var entries: [TensorEntry] = []
        for (key, value) in dict.items {
            guard case let .string(name) = key else { throw fail("a state-dict key is not a string") }
            guard case let .tensor(storageKey, dtype, storageCount, offset, shape, strides) = value else { continue }
            guard let storage = files["data/\(storageKey)"] else {
                throw fail("tensor '\(name)': storage '\(storageKey)' is missing from the archive")
            }
            let (needed, overflow) = storageCount.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, needed <= storage.size else {
                throw fail("tensor '\(name)': storage '\(storageKey)' holds \(storage.size) bytes; \(storageCount) \(dtype) elements need \(needed)")
            }
            entries.append(TensorEntry(name: name, dtype: dtype, shape: shape, strides: strides,
                                       storageByteOffset: storage.dataOffset, storageCount: storageCount,
                                       storageOffset: offset))
        }
        return try StateDict(path: path, file: file, entries: entries)
    }
}
