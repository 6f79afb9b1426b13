import Foundation
@testable import SegwatchCLIP
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// One case of a CLIP parity fixture's `expected.json`: its tensors by logical name.
private struct CLIPCase: Decodable {
    struct TensorInfo: Decodable { var key: String; var role: String }
    var name: String
    var kind: String
    var tensors: [String: TensorInfo]
}

/// The model tested apart from the tokenizer and the resize: each case's stored inputs
/// (`text.input_ids`, `image.pixels`) in, its outputs compared under their stored tolerances.
struct CLIPParityTests {
    @Test(arguments: ["clip_hf", "open_clip"])
    func everyCaseMatchesTheReference(fixture: String) throws {
        let parity = try ParityFixture(fixture)
        struct File: Decodable { var cases: [CLIPCase] }
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: parity.directory.appendingPathComponent("expected.json"))).cases
        let backend = testBackend
        let model = try CLIP.load(parity.directory.path, backend: backend)
        #expect(!cases.isEmpty)
        for item in cases {
            func key(_ name: String) throws -> String {
                try #require(item.tensors[name]?.key, "case \(item.name) has no \(name)")
            }
            switch item.kind {
            case "text":
                let ids = try parity.tensor(key("text.input_ids"))
                let width = ids.shape[1], values = ids.toArray()
                let rows = (0..<ids.shape[0]).map { n in values[(n * width)..<((n + 1) * width)].map { Int32($0) } }
                let comparison = try parity.check(backend.download(model.text(rows)), key: key("text.embeds"))
                #expect(comparison.passed, "\(fixture) \(item.name): \(comparison)")
            case "pooled", "dense":
                let pixels = try parity.tensor(key("image.pixels"))
                let (pooled, dense) = model.vision(backend.upload(pixels), dense: item.kind == "dense")
                let comparison = item.kind == "dense"
                    ? try parity.check(backend.download(try #require(dense)), key: key("image.dense"))
                    : try parity.check(backend.download(pooled), key: key("image.embeds"))
                #expect(comparison.passed, "\(fixture) \(item.name): \(comparison)")
            default:
                Issue.record("\(fixture): unknown case kind \(item.kind)")
            }
        }
    }

    // CLIP's hidden states by level (the USE head's inputs), against transformers'
    // `hidden_states` on the fixture's 10x6 input (positions interpolated): level 0 is the first
    // block's input, after pre_layrnorm; the last is the last block's output, from the same pass
    // as the pooled embedding, which stays the fixture's.
    @Test func hiddenStatesByLevelMatchTransformers() throws {
        let parity = try ParityFixture("clip_hf")
        let references = try ParityFixture(Fixtures.packageRoot.appendingPathComponent("Tests/SegwatchCLIPTests").path,
                                           tensors: "hidden_states.safetensors", json: "hidden_states.json")
        let backend = testBackend
        let model = try CLIP.load(parity.directory.path, backend: backend)
        let pixels = try parity.tensor("dense_bikes_f100_10x6.image.pixels")
        let levels = Set(0...model.vision.depth)
        let features = model.vision.features(backend.upload(pixels), dense: true, levels: levels)
        #expect(Set(features.hidden.keys) == levels)
        for level in levels.sorted() {
            let comparison = try references.check(backend.download(features.hidden[level]!), key: "dense_bikes_f100_10x6.hidden.\(level)")
            #expect(comparison.passed, "\(comparison)")
        }
        let plain = model.vision(backend.upload(pixels), dense: true)
        #expect(backend.download(features.dense!).toArray() == backend.download(plain.dense!).toArray())
        #expect(backend.download(features.pooled).toArray() == backend.download(plain.pooled).toArray())
    }

    // A window of the patch grid (what a tracked frame computes around the segments it embeds):
    // its position embeddings are the whole grid's at those rows and columns, a window of the
    // whole grid is the picture itself, and the window's patch features stay close to the
    // whole picture's at the same patches (they attend to the window's patches only).
    @Test func aWindowKeepsThePositionsOfItsPatches() throws {
        let parity = try ParityFixture("clip_hf")
        let backend = testBackend
        let model = try CLIP.load(parity.directory.path, backend: backend)
        let patch = model.vision.patchSize
        let pixels = Tensor(shape: [1, 3, 6 * patch, 8 * patch],
                            values: (0..<(3 * 48 * patch * patch)).map { Float(($0 &* 2654435761) % 2001) / 1000 - 1 })
        let grid = (h: 6, w: 8), window = PatchWindow(grid: grid, rows: 1..<5, columns: 2..<7)
        let all = model.vision.positions(grid), part = model.vision.positions(grid, window: window)
        let width = all.shape[2]
        #expect(part.shape == [1, 1 + 4 * 5, width])
        for (n, (row, column)) in window.rows.flatMap({ r in window.columns.map { (r, $0) } }).enumerated() {
            let expected = all.sliced(1, (1 + row * grid.w + column)..<(2 + row * grid.w + column)).toArray()
            #expect(part.sliced(1, (1 + n)..<(2 + n)).toArray() == expected, "patch (\(row), \(column))")
        }
        let whole = backend.download(try #require(model.vision(backend.upload(pixels), dense: true).dense))
        let wholeWindow = PatchWindow(grid: grid, rows: 0..<6, columns: 0..<8)
        #expect(backend.download(try #require(model.vision(backend.upload(pixels), dense: true, window: wholeWindow).dense)).toArray() == whole.toArray())
        let cut = pixels.sliced(2, patch..<(5 * patch)).sliced(3, (2 * patch)..<(7 * patch)).contiguous()
        let windowed = backend.download(try #require(model.vision(backend.upload(cut), dense: true, window: window).dense))
        #expect(windowed.shape == [1, 4, 5, whole.shape[3]])
        var cosines: [Float] = []
        for r in 0..<4 {
            for c in 0..<5 {
                let a = windowed.sliced(1, r..<(r + 1)).sliced(2, c..<(c + 1)).toArray()
                let b = whole.sliced(1, (r + 1)..<(r + 2)).sliced(2, (c + 2)..<(c + 3)).toArray()
                let dot = zip(a, b).map(*).reduce(0, +)
                cosines.append(dot / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot()))
            }
        }
        let mean = cosines.reduce(0, +) / Float(cosines.count)
        print("window features against the whole picture's: mean cosine \(mean), least \(cosines.min()!)")
        #expect(mean > 0.9)
    }

    // Both layouts of the same weights read alike: pytorch_model.bin (shared q/k/v storage,
    // transposed projections) gives the same model as model.safetensors, bit for bit (every
    // test here runs on 2 threads: the thread count decides how products are split).
    @Test func pickleAndSafetensorsGiveTheSameModel() throws {
        let folder = Fixtures.root.appendingPathComponent("clip_hf")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for name in ["config.json", "pytorch_model.bin"] {
            try FileManager.default.createSymbolicLink(at: scratch.appendingPathComponent(name), withDestinationURL: folder.appendingPathComponent(name))
        }
        let backend = testBackend
        let fromSafetensors = try CLIP.load(folder.path, backend: backend)
        let fromPickle = try CLIP.load(scratch.path, backend: backend)
        #expect(fromPickle.weightsPath.hasSuffix("pytorch_model.bin"))
        let pixels = try ParityFixture("clip_hf").tensor("pooled_bus.image.pixels")
        #expect(fromPickle.vision(pixels, dense: false).pooled.toArray() == fromSafetensors.vision(pixels, dense: false).pooled.toArray())
        let ids: [[Int32]] = [[49406, 320, 1125, 539, 320, 2368, 49407] + [Int32](repeating: 0, count: 70)]
        #expect(try fromPickle.text(ids).toArray() == fromSafetensors.text(ids).toArray())
    }

    @Test func configurationsOfBothLayouts() throws {
        let hf = try CLIPConfig.load(Fixtures.root.appendingPathComponent("clip_hf").path)
        #expect(hf.layout == .transformers && hf.vision == CLIPTowerConfig(width: 64, layers: 3, heads: 4, mlpWidth: 160))
        #expect(hf.text == CLIPTowerConfig(width: 32, layers: 2, heads: 2, mlpWidth: 96) && hf.embedDim == 32 && hf.activation == .quickGelu)
        let open = try CLIPConfig.load(Fixtures.root.appendingPathComponent("open_clip").path)
        #expect(open.layout == .openCLIP && open.vision == CLIPTowerConfig(width: 96, layers: 2, heads: 3, mlpWidth: 384))
        #expect(open.text == CLIPTowerConfig(width: 40, layers: 3, heads: 5, mlpWidth: 160) && open.embedDim == 48)
    }

    // A folder without a configuration, or with weights of the wrong size, is refused with a
    // message naming what was found.
    @Test func wrongFoldersAreRefused() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        #expect(throws: CLIPError.self) { try CLIPConfig.load(scratch.path) }
        // open_clip's configuration with the transformers fixture's weights renamed: wrong keys.
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("open_clip/open_clip_config.json"),
                                         to: scratch.appendingPathComponent("open_clip_config.json"))
        #expect { try CLIP.load(scratch.path, backend: testBackend) } throws: { error in
            "\(error)".contains("open_clip_model.safetensors")
        }
        try FileManager.default.createSymbolicLink(at: scratch.appendingPathComponent("open_clip_model.safetensors"),
                                                   withDestinationURL: Fixtures.root.appendingPathComponent("clip_hf/model.safetensors"))
        #expect(throws: (any Error).self) { try CLIP.load(scratch.path, backend: testBackend) }
    }
}
