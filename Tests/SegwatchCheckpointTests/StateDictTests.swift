import Foundation
import SegwatchCheckpoint
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// A digest `reference_digest.py` computed from a fixture with Python's pickle, zipfile and
/// numpy (no segwatch code); they are kept in `checkpoint_digests.json` beside this file.
struct ReferenceDigest: Decodable, Sendable {
    var count: Int
    var names_sha256: String
    var sum: Double
    var abs_sum: Double
    var weighted_sum: Double

    static func load(_ file: String) throws -> ReferenceDigest? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("checkpoint_digests.json")
        return try JSONDecoder().decode([String: ReferenceDigest].self, from: Data(contentsOf: url))[file]
    }
}

@Suite struct StateDictTests {
    // Guards both readers on every fixture checkpoint: names, shapes, dtypes and values
    // (through strides, offsets, shared storages and float16/bfloat16 conversion).
    @Test(arguments: ["mobile_sam/mobile_sam.pt", "sam_vit/sam_vit_tiny.pth", "clip_hf/model.safetensors",
                      "clip_hf/pytorch_model.bin", "open_clip/open_clip_model.safetensors", "clip_hf/expected.safetensors"])
    func everyTensorMatchesTheIndependentReader(file: String) throws {
        let reference = try #require(try ReferenceDigest.load(file), "no reference digest for \(file)")
        let state = try StateDict.load(Fixtures.root.appendingPathComponent(file).path)
        let names = state.names.sorted()
        #expect(names.count == reference.count)

        var lines = ""
        var total = 0.0, absolute = 0.0, weighted = 0.0
        for (rank, name) in names.enumerated() {
            let entry = state.entries[name]!
            lines += "\(name) \(entry.dtype) \(entry.shape)\n"
            let values = try state.tensor(name).toArray()
            for (i, value) in values.enumerated() {
                let v = Double(value)
                total += v
                absolute += abs(v)
                weighted += v * Double(i % 13 + 1) * Double(rank + 1)
            }
        }
        #expect(sha256Hex(Data(lines.utf8)) == reference.names_sha256, "names, dtypes or shapes differ")
        // Both sides sum float32 values in float64; only the order of additions differs.
        for (ours, expected, key) in [(total, reference.sum, "sum"), (absolute, reference.abs_sum, "abs_sum"),
                                      (weighted, reference.weighted_sum, "weighted_sum")] {
            let bound = 1e-9 * reference.abs_sum * (key == "weighted_sum" ? 13 * Double(names.count) : 1)
            #expect(abs(ours - expected) <= bound, "\(key): \(ours) vs reference \(expected)")
        }
    }

    // Guards the claim that both formats of one state dict read identically, element for element.
    @Test func pytorchAndSafetensorsCopiesReadIdentically() throws {
        let bin = try StateDict.load(Fixtures.root.appendingPathComponent("clip_hf/pytorch_model.bin").path)
        let safe = try StateDict.load(Fixtures.root.appendingPathComponent("clip_hf/model.safetensors").path)
        #expect(Set(bin.names) == Set(safe.names))
        for name in bin.names {
            let a = try bin.tensor(name), b = try safe.tensor(name)
            #expect(a.shape == b.shape, "\(name)")
            #expect(a.toArray() == b.toArray(), "\(name) differs")
        }
    }

    // Guards the reader traps of the SAM ViT fixture: transposed, channels-last, shared storage.
    @Test func stridedAndSharedStoragesAreViewsNotCopies() throws {
        let state = try StateDict.load(Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path)
        let qkv = try state.tensor("image_encoder.blocks.0.attn.qkv.weight", shape: [192, 64])
        #expect(qkv.strides == [1, 192] && !qkv.isContiguous)
        let iou = try state.tensor("mask_decoder.iou_token.weight")
        let mask = try state.tensor("mask_decoder.mask_tokens.weight")
        #expect(iou.offset == 0 && mask.offset == 256 && mask.shape == [4, 256])
        #expect(!mask.toArray().contains { $0.isNaN } && !qkv.toArray().contains { $0.isNaN })
    }

    @Test func wrongShapeAndMissingTensorNameFileKeyAndShapes() throws {
        let path = Fixtures.root.appendingPathComponent("clip_hf/model.safetensors").path
        let state = try StateDict.load(path)
        let name = state.names[0]
        let actual = state.entries[name]!.shape
        #expect(throws: CheckpointError.shapeMismatch(file: path, key: name, expected: [7, 7], actual: actual)) {
            _ = try state.tensor(name, shape: [7, 7])
        }
        #expect(throws: CheckpointError.missingTensor(file: path, key: "no.such.weight")) {
            _ = try state.tensor("no.such.weight")
        }
        #expect(throws: CheckpointError.self) { try state.checkAllUsed([name]) }
    }
}

/// sha256 via the coreutils tool, to avoid a crypto dependency for one test.
func sha256Hex(_ data: Data) -> String {
    let folder = try! TemporaryFolder()
    defer { folder.remove() }
    let path = folder.path("lines")
    try! data.write(to: URL(fileURLWithPath: path))
    let result = try! runProcess("/usr/bin/sha256sum", [path])
    return String(result.output.prefix(64))
}
