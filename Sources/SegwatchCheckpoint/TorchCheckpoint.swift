import SegwatchTensor

/// PyTorch's zip formats: `<folder>/data.pkl`, `<folder>/data/<key>` (one raw little-endian
/// storage per key) and `<folder>/byteorder`. The pickle is a state dict (`torch.save`) or a
/// TorchScript module tree (`torch.jit.save`, as OpenAI publishes CLIP), whose tensors are
/// named by their attribute paths as `state_dict()` names them. The folder is whatever the
/// writer chose; it is found, not assumed.
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
        // What is read must be stored; what is not (TorchScript's source) may be compressed.
        for (name, entry) in files where entry.method != 0 && (name.hasPrefix("data/") || name == "data.pkl" || name == "byteorder") {
            throw fail("zip archive: entry \(quoted(entry.name)) is compressed (method \(entry.method)); PyTorch stores tensors and pickles uncompressed")
        }
        if let order = files["byteorder"] {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[order.dataOffset ..< order.dataOffset + order.size]), as: UTF8.self)
            guard text == "little" else { throw fail("byte order \(quoted(text)); only little-endian files are supported") }
        }

        var machine = PickleMachine(UnsafeRawBufferPointer(rebasing: bytes[pickle.dataOffset ..< pickle.dataOffset + pickle.size]), path: path)
        // Freed one value at a time however deep it nests, also when the pickle is refused.
        var root = PickleValue.none
        defer { machine.dismantle(&root) }
        root = try machine.run { pid in
            // ('storage', storage_type, key, location, numel)
            guard case let .tuple(fields) = pid, fields.count == 5, case .string("storage") = fields[0],
                  case let .global(.storageType(dtype)) = fields[1], case let .string(key) = fields[2],
                  case let .int(count) = fields[4], count >= 0 else {
                throw fail("a persistent id is not a ('storage', type, key, location, numel) tuple")
            }
            return .storage(dtype: dtype, key: key, count: count)
        }
        let tensors: [(name: String, value: PickleValue)]
        switch root {
        case let .dict(dict):
            tensors = try dict.items.map { key, value in
                guard case let .string(name) = key else { throw fail("a state-dict key is not a string") }
                return (name, value)
            }
        case let .object(module):
            tensors = try moduleTensors(module, path: path)
        default:
            throw fail("the pickle holds no dict of tensors and no TorchScript module")
        }

        var entries: [TensorEntry] = []
        for (name, value) in tensors {
            guard case let .tensor(storageKey, dtype, storageCount, offset, shape, strides) = value else { continue }
            guard let storage = files["data/\(storageKey)"] else {
                throw fail("tensor \(quoted(name)): storage \(quoted(storageKey)) is missing from the archive")
            }
            let (needed, overflow) = storageCount.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, needed <= storage.size else {
                throw fail("tensor \(quoted(name)): storage \(quoted(storageKey)) holds \(storage.size) bytes; \(storageCount) \(dtype) elements need \(needed)")
            }
            entries.append(TensorEntry(name: name, dtype: dtype, shape: shape, strides: strides,
                                       storageByteOffset: storage.dataOffset, storageCount: storageCount,
                                       storageOffset: offset))
        }
        return try StateDict(path: path, file: file, entries: entries)
    }

    /// A TorchScript module's tensors, depth first, named `attribute.attribute…` as
    /// `state_dict()` names them; other attributes (flags, numbers, strings) are skipped.
    private static func moduleTensors(_ root: PickleObject, path: String) throws -> [(name: String, value: PickleValue)] {
        var result: [(name: String, value: PickleValue)] = []
        var visiting: Set<ObjectIdentifier> = []
        func walk(_ object: PickleObject, prefix: String, depth: Int) throws {
            // A pickle can make an object its own attribute; a module tree never does.
            guard depth < 64, visiting.insert(ObjectIdentifier(object)).inserted else {
                throw CheckpointError.malformed(file: path, reason: "the module tree at \(quoted(prefix)) (\(object.className)) loops or nests too deep")
            }
            defer { visiting.remove(ObjectIdentifier(object)) }
            for (key, value) in object.attributes.items {
                guard case let .string(name) = key else { continue }
                switch value {
                case .tensor: result.append((prefix + name, value))
                case let .object(child): try walk(child, prefix: prefix + name + ".", depth: depth + 1)
                default: continue
                }
            }
        }
        try walk(root, prefix: "", depth: 0)
        return result
    }
}
