import Foundation
import SegwatchCheckpoint
import SegwatchTestSupport
import Testing

/// Small checkpoints built byte by byte, so each test knows exactly what is in the file.
enum HandMade {
    /// A safetensors file with `a` (F32 [2, 2]) and `b` (F16 [3]).
    static func safetensors(header override: String? = nil) -> Data {
        let header = override ?? #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}"#
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header.utf8)
        for value: Float in [1, 2, 3, 4] { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        for value: Float16 in [0.5, -1, 2] { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// The pickle protocol-2 program `torch.save` writes for {"w": FloatStorage '0' viewed as [2, 2]}.
    static func statePickle(global: String = "torch._utils\n_rebuild_tensor_v2\n") -> [UInt8] {
        func unicode(_ s: String) -> [UInt8] {
            [0x58] + withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8)
        }
        var p: [UInt8] = [0x80, 0x02]
        p += Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x52]           // OrderedDict()
        p += unicode("w")
        p += Array("c\(global)".utf8) + [0x28]                                  // rebuild, MARK
        p += [0x28] + unicode("storage") + Array("ctorch\nFloatStorage\n".utf8) // MARK 'storage' type
        p += unicode("0") + unicode("cpu") + [0x4B, 4, 0x74, 0x51]              // '0' 'cpu' 4 TUPLE BINPERSID
        p += [0x4B, 0, 0x4B, 2, 0x4B, 2, 0x86, 0x4B, 2, 0x4B, 1, 0x86, 0x89]    // 0 (2,2) (2,1) False
        p += Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x52, 0x74, 0x52] // OrderedDict() TUPLE REDUCE
        p += [0x73, 0x2E]                                                       // SETITEM STOP
        return p
    }

    /// A stored (uncompressed) zip of `files`, as PyTorch writes them.
    static func zip(_ files: [(String, [UInt8])]) -> Data {
        var out = Data(), directory = Data()
        func u16(_ v: Int, _ d: inout Data) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        func u32(_ v: Int, _ d: inout Data) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        for (name, bytes) in files {
            let offset = out.count
            u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0, &out)
            u32(0, &out); u32(bytes.count, &out); u32(bytes.count, &out); u16(name.utf8.count, &out); u16(0, &out)
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: bytes)
            u32(0x0201_4B50, &directory); u16(20, &directory); u16(20, &directory); u16(0, &directory); u16(0, &directory)
            u16(0, &directory); u16(0, &directory); u32(0, &directory); u32(bytes.count, &directory); u32(bytes.count, &directory)
            u16(name.utf8.count, &directory); u16(0, &directory); u16(0, &directory); u16(0, &directory); u16(0, &directory)
            u32(0, &directory); u32(offset, &directory)
            directory.append(contentsOf: name.utf8)
        }
        let directoryOffset = out.count
        out.append(directory)
        u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out); u16(files.count, &out); u16(files.count, &out)
        u32(directory.count, &out); u32(directoryOffset, &out); u16(0, &out)
        return out
    }

    static func torchFile(global: String = "torch._utils\n_rebuild_tensor_v2\n") -> Data {
        let storage = [Float](arrayLiteral: 1, 2, 3, 4).flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        return zip([("any_folder/data.pkl", statePickle(global: global)), ("any_folder/byteorder", Array("little".utf8)),
                    ("any_folder/data/0", storage), ("any_folder/version", Array("3\n".utf8))])
    }
}

@Suite struct BadCheckpointTests {
    func load(_ data: Data, in folder: TemporaryFolder, name: String) throws -> StateDict {
        let path = folder.path(name)
        try data.write(to: URL(fileURLWithPath: path))
        return try StateDict.load(path)
    }

    // Guards the hand-made files themselves, so the failures below mean what they say.
    @Test func handMadeFilesLoad() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let safe = try load(HandMade.safetensors(), in: folder, name: "ok.safetensors")
        #expect(try safe.tensor("a", shape: [2, 2]).toArray() == [1, 2, 3, 4])
        #expect(try safe.tensor("b").toArray() == [0.5, -1, 2])
        let torch = try load(HandMade.torchFile(), in: folder, name: "ok.pt")
        #expect(try torch.tensor("w", shape: [2, 2]).toArray() == [1, 2, 3, 4])
    }

    @Test(arguments: [
        (#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]}}"#, "overlaps"),
        (#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,20]}}"#, "needs 3 x 2 bytes"),
        (#"{"a":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}"#, "dtype 'F8_E4M3'"),
        (#"{"a":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}"#, "no valid shape"),
        (#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, "cover 16 of the 22"),
        (#"["not","an","object"]"#, "not a JSON object"),
        (#"{"a": nope}"#, "not valid JSON"),
    ])
    func invalidSafetensorsHeadersAreRejected(header: String, reason: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        #expect {
            _ = try load(HandMade.safetensors(header: header), in: folder, name: "bad.safetensors")
        } throws: { error in
            guard case let CheckpointError.malformed(file, message) = error else { return false }
            return file.hasSuffix("bad.safetensors") && message.contains(reason)
        }
    }

    @Test func hugeHeaderLengthIsRefusedBeforeReading() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var data = HandMade.safetensors()
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
        #expect(throws: CheckpointError.self) { _ = try load(data, in: folder, name: "huge.safetensors") }
    }

    @Test func forbiddenGlobalIsNeverCalled() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        #expect(throws: CheckpointError.forbiddenGlobal(file: folder.path("evil.pt"), name: "os.system")) {
            _ = try load(HandMade.torchFile(global: "os\nsystem\n"), in: folder, name: "evil.pt")
        }
    }

    @Test func truncatedRealCheckpointIsAClearError() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let whole = try Data(contentsOf: Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth"))
        #expect {
            _ = try load(whole.prefix(whole.count / 2), in: folder, name: "half.pth")
        } throws: { error in
            (error as? CheckpointError)?.description.contains("half.pth") == true
        }
    }

    // Guards robustness: thousands of byte-flipped and truncated small checkpoints either
    // load or throw CheckpointError; none crashes or hangs.
    @Test(arguments: ["safetensors", "pt"])
    func mutatedCheckpointsNeverCrash(format: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let original = format == "pt" ? HandMade.torchFile() : HandMade.safetensors()
        var generator = SplitMix(seed: format == "pt" ? 1 : 2)
        var rejected = 0
        let started = Date()
        for round in 0..<2000 {
            var data = original
            if round % 4 == 0 {
                data = data.prefix(Int(generator.next() % UInt64(data.count)))
            } else {
                for _ in 0...(generator.next() % 4) {
                    let index = Int(generator.next() % UInt64(data.count))
                    data[index] = UInt8(truncatingIfNeeded: generator.next())
                }
            }
            do {
                let state = try load(data, in: folder, name: "m.\(format)")
                for name in state.names { _ = try state.tensor(name).toArray() }
            } catch is CheckpointError {
                rejected += 1
            }
        }
        #expect(rejected > 500, "only \(rejected) of 2000 mutations were rejected")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    /// `data.pkl` as a torch zip of its own (no tensors needed: the pickle is refused first).
    private func pickleFile(_ program: [UInt8]) -> Data {
        HandMade.zip([("any_folder/data.pkl", program), ("any_folder/byteorder", Array("little".utf8))])
    }

    // Deeply nested pickles once crashed the process with a stack overflow while the parsed
    // structure was freed (SIGSEGV, nothing on stderr). Each is now a clear error in bounded time.
    @Test(arguments: [("tuples", 1_000_000), ("lists", 30_000), ("dicts", 30_000)])
    func deeplyNestedPicklesAreRefused(kind: String, levels: Int) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var program: [UInt8] = [0x80, 0x02]  // PROTO 2
        switch kind {
        case "tuples":  // (((None,),),) ...: NONE, then TUPLE1 again and again
            program += [0x4E] + [UInt8](repeating: 0x85, count: levels)
        case "lists":   // `levels` empty lists, then each APPEND puts the top one into the one below
            program += [UInt8](repeating: 0x5D, count: levels) + [UInt8](repeating: 0x61, count: levels - 1)
        default:        // {None: {None: ...}}: dicts and keys, then each SETITEM files the top dict under the key below it
            for _ in 0..<levels { program += [0x7D, 0x4E] }
            program += [0x7D] + [UInt8](repeating: 0x73, count: levels)
        }
        program.append(0x2E)  // STOP
        let started = Date()
        #expect { _ = try load(pickleFile(program), in: folder, name: "deep.pt") } throws: { error in
            "\(error)".contains("nest more than") && "\(error)".contains("deep.pt")
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }

    // Nesting built through the memo, which the depth tracking cannot see (lists filled after
    // they were put inside others), is freed without recursion all the same.
    @Test func nestingThroughTheMemoIsFreedWithoutRecursion() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let levels = 1_000_000
        // The root list, memo 0. Each round: a new empty list, memo 2, appended to the list
        // below it (so every APPEND adds an empty list: depth 2 as tracked), then fetched back
        // from the memo to receive the next round's list. The chain is `levels` deep.
        var program: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x00]
        for _ in 0..<levels { program += [0x5D, 0x71, 0x02, 0x61, 0x68, 0x02] }
        program += [0x68, 0x00, 0x2E]  // the root, STOP
        let started = Date()
        #expect { _ = try load(pickleFile(program), in: folder, name: "memo.pt") } throws: { error in
            "\(error)".contains("memo.pt")
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }

    // A byte order read from the file is quoted on one line, whatever it holds.
    @Test func aWrongByteOrderIsOneLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let data = HandMade.zip([("any_folder/data.pkl", HandMade.statePickle()), ("any_folder/byteorder", Array("big\n".utf8))])
        #expect { _ = try load(data, in: folder, name: "big.pt") } throws: { error in
            let message = "\(error)"
            return !message.contains("\n") && message.contains("'big\\n'") && message.contains("big.pt")
        }
    }
}
