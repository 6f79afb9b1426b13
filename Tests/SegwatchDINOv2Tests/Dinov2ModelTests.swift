import Foundation
@testable import SegwatchDINOv2
import SegwatchMedia
import SegwatchNN
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// One case of a DINOv2 parity fixture's `expected.json`.
private struct DinoCase: Decodable {
    var name: String
    var image: String
    var size: String
    var levels: [Int]
}

/// A picture of the fixtures' `images/` as the model takes it: resized whole, normalized.
private func pixels(_ image: String, size: String, _ config: DINOv2Config) throws -> Tensor {
    let path = Fixtures.root.appendingPathComponent("images").appendingPathComponent(URL(fileURLWithPath: image).lastPathComponent).path
    let frame = try #require(try VideoDecoder(InputSpec(path), options: DecodeOptions(layout: .rgb24)).next())
    let sides = size.split(separator: "x").compactMap { Int($0) }
    return modelPixels(rgb: frame.packedBytes(), height: frame.height, width: frame.width, size: (sides[0], sides[1]),
                       mean: config.imageMean, std: config.imageStd)
}

/// A fixture folder's files copied to a temporary folder, to be altered.
private func copy(_ fixture: URL) throws -> TemporaryFolder {
    let folder = try TemporaryFolder()
    for name in ["config.json", "model.safetensors", "preprocessor_config.json"] {
        try FileManager.default.copyItem(at: fixture.appendingPathComponent(name), to: folder.url.appendingPathComponent(name))
    }
    return folder
}

private func editConfig(_ folder: TemporaryFolder, _ edit: (inout [String: Any]) -> Void) throws {
    let url = folder.url.appendingPathComponent("config.json")
    var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    edit(&json)
    try JSONSerialization.data(withJSONObject: json).write(to: url)
}

/// transformers' own Dinov2Model (the shared fixture: 48 wide, 3 layers, a 37x37 position grid
/// resized to other grids) and Dinov2WithRegistersModel (this folder's: 2 registers, whose
/// positions are resized with antialiasing, SwiGLU, a 4x4 grid shrunk, grown and kept, level 0),
/// each case from the picture through the resize to every output, under the stored tolerances.
/// The cases run twice on one model, so that a case follows cases of other grids: the resized
/// position table it keeps (`ResizedPositions`) must be the one of the grid asked.
struct Dinov2ModelTests {
    static let registersFixture = Fixtures.packageRoot.appendingPathComponent("Tests/SegwatchDINOv2Tests/registers_swiglu").path

    @Test(arguments: ["dinov2", registersFixture])
    func everyCaseMatchesTransformers(fixture: String) throws {
        let parity = try ParityFixture(fixture)
        struct File: Decodable { var cases: [DinoCase] }
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: parity.directory.appendingPathComponent("expected.json"))).cases
        let backend = testBackend
        let model = try Dinov2Model.load(parity.directory.path, backend: backend)
        #expect(!cases.isEmpty)
        for item in cases + cases {
            let output = try model(backend.upload(pixels(item.image, size: item.size, model.config)), levels: Set(item.levels))
            var outputs = [("last", output.last), ("pooled", output.pooled)]
            for level in item.levels { outputs.append(("hidden.\(level)", try #require(output.hidden[level], "level \(level)"))) }
            for (name, value) in outputs {
                let comparison = try parity.check(backend.download(value), key: "\(item.name).\(name)")
                #expect(comparison.passed, "\(fixture) \(item.name): \(comparison)")
            }
        }
    }

    @Test func readsTheConfiguration() throws {
        let plain = try DINOv2Config.load(ParityFixture("dinov2").directory.path)
        #expect(plain.architecture == .dinov2 && plain.registers == 0 && !plain.swiGLU)
        #expect((plain.hiddenSize, plain.layers, plain.heads, plain.patchSize, plain.nativeGrid, plain.mlpHidden) == (48, 3, 3, 14, 37, 192))
        #expect(plain.imageMean == [0.485, 0.456, 0.406] && plain.layerNormEps == 1e-6)
        let registers = try DINOv2Config.load(Self.registersFixture)
        #expect(registers.architecture == .withRegisters && registers.registers == 2 && registers.swiGLU)
        // Dinov2SwiGLUFFN: int(12 * 4) = 48 -> int(48 * 2 / 3) = 32, a multiple of 8.
        #expect(registers.mlpHidden == 32)
    }

    // Bad folders are refused at load, naming the file and what was expected.
    @Test func refusesWhatIsNotTheModelItsConfigurationDescribes() throws {
        let fixture = try ParityFixture("dinov2").directory
        let backend = testBackend

        var folders: [TemporaryFolder] = []
        defer { folders.forEach { $0.remove() } }
        func copied() throws -> TemporaryFolder {
            let folder = try copy(fixture)
            folders.append(folder)
            return folder
        }

        let notDino = try copied()
        try editConfig(notDino) { $0["model_type"] = "vit" }
        #expect { try Dinov2Model.load(notDino.url.path, backend: backend) } throws: {
            "\($0)".contains("'model_type': 'vit'; expected dinov2 or dinov2_with_registers")
        }

        let moreLayers = try copied()
        try editConfig(moreLayers) { $0["num_hidden_layers"] = 4 }
        #expect { try Dinov2Model.load(moreLayers.url.path, backend: backend) } throws: {
            "\($0)".contains("config.json says 4 layers, the weights hold 3")
        }

        // Another native grid: the position embeddings no longer have the configuration's shape.
        let otherGrid = try copied()
        try editConfig(otherGrid) { $0["image_size"] = 224 }
        #expect { try Dinov2Model.load(otherGrid.url.path, backend: backend) } throws: {
            "\($0)".contains("embeddings.position_embeddings") && "\($0)".contains("257")
        }

        let wider = try copied()
        try editConfig(wider) { $0["hidden_size"] = 64; $0["num_attention_heads"] = 4 }
        #expect { try Dinov2Model.load(wider.url.path, backend: backend) } throws: { "\($0)".contains("expected [64, 3, 14, 14]") }

        let noWeights = try copied()
        try FileManager.default.removeItem(at: noWeights.url.appendingPathComponent("model.safetensors"))
        #expect(throws: DINOv2Error.unrecognized(path: noWeights.url.path, reason: "no weights: expected model.safetensors or pytorch_model.bin beside config.json")) {
            try Dinov2Model.load(noWeights.url.path, backend: backend)
        }
        #expect(throws: DINOv2Error.unreadable(path: "/nonexistent/dino", reason: "no such folder")) {
            try Dinov2Model.load("/nonexistent/dino", backend: backend)
        }
    }

    @Test func refusesInputsItCannotTake() throws {
        let backend = testBackend
        let model = try Dinov2Model.load(ParityFixture("dinov2").directory.path, backend: backend)
        let picture = backend.upload(Tensor(shape: [1, 3, 28, 30], values: [Float](repeating: 0, count: 3 * 28 * 30)))
        #expect { try model(picture) } throws: { "\($0)".contains("multiples of the patch size 14") }
        let square = backend.upload(Tensor(shape: [1, 3, 28, 28], values: [Float](repeating: 0, count: 3 * 28 * 28)))
        #expect { try model(square, levels: [4]) } throws: { "\($0)".contains("level 4: this DINOv2 has hidden states 0...3") }
        #expect(try backend.shape(model(square, levels: [0, 3]).last) == [1, 5, 48])
    }
}
