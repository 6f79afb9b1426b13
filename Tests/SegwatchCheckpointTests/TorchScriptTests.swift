import Foundation
import SegwatchCheckpoint
import SegwatchTestSupport
import Testing

/// TorchScript archives (`torch.jit.save`, OpenAI's CLIP format) written by torch itself with
/// `TorchScript/make_torchscript.py`, against what torch's own `state_dict()` reads from them.
@Suite struct TorchScriptTests {
    struct Expected: Decodable {
        var shape: [Int]
        var values: [Double]
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("TorchScript")

    // Guards the module tree's flattening: every tensor torch names, by the same name, with its
    // shape and values (through a storage offset, a transposed view and float16), and nothing else.
    @Test(arguments: ["traced.pt", "scripted.pt"])
    func moduleTreeReadsAsTorchsStateDict(archive: String) throws {
        let expected = try JSONDecoder().decode([String: [String: Expected]].self,
                                                from: Data(contentsOf: Self.folder.appendingPathComponent("expected.json")))[archive]
        let reference = try #require(expected)
        let state = try StateDict.load(Self.folder.appendingPathComponent(archive).path)
        #expect(Set(state.names) == Set(reference.keys))
        #expect(state.names.count == reference.count, "a tensor is named twice")
        for (name, tensor) in reference {
            #expect(state.entries[name]?.shape == tensor.shape, "\(name)")
            let values = try state.tensor(name).contiguous().toArray()
            #expect(values.map(Double.init) == tensor.values.map { Double(Float($0)) }, "\(name)")
        }
    }

    // Guards the one new opcode against hostile use: NEWOBJ only instantiates a TorchScript
    // class as plain data, and a module that contains itself is an error, not a hang.
    @Test func selfContainingModuleIsRefused() throws {
        func unicode(_ s: String) -> [UInt8] { [0x58] + withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8) }
        var p: [UInt8] = [0x80, 0x02]
        p += Array("c__torch__.model\nCLIP\n".utf8) + [0x29, 0x81, 0x71, 0]     // CLIP() BINPUT 0
        p += [0x7D, 0x28] + unicode("visual") + [0x68, 0, 0x75, 0x62, 0x2E]     // {visual: memo 0} BUILD STOP
        let folder = try TemporaryFolder()
        let path = folder.path("loop.pt")
        try HandMade.zip([("loop/data.pkl", p), ("loop/byteorder", Array("little".utf8))]).write(to: URL(fileURLWithPath: path))
        #expect { _ = try StateDict.load(path) } throws: { error in
            "\(error)".contains("loops") && "\(error)".contains("loop.pt")
        }

        var evil: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x29, 0x81, 0x2E]
        try HandMade.zip([("evil/data.pkl", evil), ("evil/byteorder", Array("little".utf8))]).write(to: URL(fileURLWithPath: path))
        #expect(throws: CheckpointError.forbiddenGlobal(file: path, name: "os.system")) { _ = try StateDict.load(path) }
        evil = [0x80, 0x02] + Array("ctorch\nFloatStorage\n".utf8) + [0x29, 0x81, 0x2E]
        try HandMade.zip([("evil/data.pkl", evil), ("evil/byteorder", Array("little".utf8))]).write(to: URL(fileURLWithPath: path))
        #expect(throws: CheckpointError.self) { _ = try StateDict.load(path) }
    }
}
