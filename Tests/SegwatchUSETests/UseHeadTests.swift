import Foundation
import SegwatchCheckpoint
import SegwatchTensor
import SegwatchTestSupport
@testable import SegwatchUSE
import Testing

/// A head parity fixture: its parameters, batch and hyper-parameters.
private struct HeadFixture {
    let parity: ParityFixture
    let head: UseHead
    let input: UseHeadInput
    let text: Tensor
    let target: [Int]
    let adamw: (lr: Double, weightDecay: Double, stepBefore: Int)

    init(_ name: String) throws {
        parity = try ParityFixture(name)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: parity.directory.appendingPathComponent("expected.json"))) as? [String: Any])
        let dims = try #require(json["dims"] as? [String: Int]), optimizer = try #require(json["adamw"] as? [String: Any])
        let shape = UseHeadShape(embed: dims["E"]!, clipWidth: dims["Dc"]!, dinoWidth: dims["Dd"]!, clipLevels: dims["Lc"]!, dinoLevels: dims["Ld"]!)
        var parameters: [String: Tensor] = [:]
        for (name, _) in shape.parameters { parameters[name] = try parity.tensor("param.\(name)") }
        head = try UseHead(shape: shape, parameters: parameters, clipLevels: Array(1...shape.clipLevels), dinoLevels: Array(1...shape.dinoLevels))
        input = UseHeadInput(use: try parity.tensor("input.use"), clipLevels: try parity.tensor("input.clip_levels"),
                             dinoLevels: try parity.tensor("input.dino_levels"), clipImage: try parity.tensor("input.clip_image"),
                             dinoCLS: try parity.tensor("input.dino_cls"))
        text = try parity.tensor("input.text")
        target = try parity.tensor("input.target").toArray().map { Int($0) }
        adamw = (optimizer["lr"] as! Double, optimizer["weight_decay"] as! Double, optimizer["step_before"] as! Int)
    }

    func expect(_ actual: Tensor, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let comparison = try parity.check(actual, key: key)
        #expect(comparison.passed, "\(parity.directory.lastPathComponent): \(comparison)", sourceLocation: sourceLocation)
    }
}

/// `head_forward` of the shared fixtures' script, torch autograd and torch.optim.AdamW, on the
/// shared fixture and on a small one of other sizes (3 CLIP levels, 1 DINOv2 level).
struct UseHeadTests {
    static let fixtures = ["use_head", Fixtures.packageRoot.appendingPathComponent("Tests/SegwatchUSETests/small_head").path]

    @Test(arguments: fixtures)
    func forwardPassMatchesTheReference(fixture: String) throws {
        let f = try HeadFixture(fixture)
        let result = try f.head.loss(f.input, text: f.text, target: f.target)
        try f.expect(result.z, "z")
        try f.expect(result.logits, "logits")
        try f.expect(Tensor(shape: [], values: [result.loss]), "loss")
        // Inference gives the same embeddings.
        #expect(try f.head(f.input).toArray() == result.z.toArray())
    }

    @Test(arguments: fixtures)
    func everyGradientMatchesAutograd(fixture: String) throws {
        let f = try HeadFixture(fixture)
        let result = try f.head.loss(f.input, text: f.text, target: f.target)
        #expect(Set(result.gradients.keys) == Set(f.head.shape.parameters.map(\.name)))
        for (name, _) in f.head.shape.parameters {
            try f.expect(try #require(result.gradients[name]), "grad.\(name)")
        }
    }

    // Step 3 of a run: the fixture's moments after two steps, its gradients, one update.
    @Test(arguments: fixtures)
    func oneAdamWStepMatchesTorch(fixture: String) throws {
        let f = try HeadFixture(fixture)
        var optimizer = AdamW(learningRate: f.adamw.lr, weightDecay: f.adamw.weightDecay, decayed: ["proj.weight"])
        optimizer.step = f.adamw.stepBefore
        var gradients: [String: Tensor] = [:]
        for (name, _) in f.head.shape.parameters {
            gradients[name] = try f.parity.tensor("grad.\(name)")
            optimizer.expAvg[name] = try f.parity.tensor("adamw.exp_avg.\(name)").toArray()
            optimizer.expAvgSq[name] = try f.parity.tensor("adamw.exp_avg_sq.\(name)").toArray()
        }
        var head = f.head
        optimizer.update(&head, gradients: gradients)
        #expect(optimizer.step == f.adamw.stepBefore + 1)
        for (name, shape) in f.head.shape.parameters {
            try f.expect(try #require(head.parameters[name]), "adamw.after.param.\(name)")
            try f.expect(Tensor(shape: shape, values: try #require(optimizer.expAvg[name])), "adamw.after.exp_avg.\(name)")
            try f.expect(Tensor(shape: shape, values: try #require(optimizer.expAvgSq[name])), "adamw.after.exp_avg_sq.\(name)")
        }
        // The step wrote new storage: the head it started from is unchanged.
        #expect(f.head.parameters["proj.weight"]!.toArray() == (try f.parity.tensor("param.proj.weight")).toArray())
    }

    // With proj at zero the head is the training-free embedding, whatever its norms and scales.
    @Test func aZeroResidualIsTheTrainingFreeEmbedding() throws {
        let f = try HeadFixture("use_head")
        let head = try UseHead.trainingFree(f.head.shape, clipLevels: f.head.clipLevels, dinoLevels: f.head.dinoLevels, logitScale: 4.6)
        let z = try head(f.input), use = f.input.use.toArray(), embed = f.head.shape.embed
        for b in 0..<f.input.count {
            let row = Array(use[(b * embed)..<((b + 1) * embed)])
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let expected = row.map { $0 / norm }
            let actual = Array(z.toArray()[(b * embed)..<((b + 1) * embed)])
            #expect(zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-6 }, "segment \(b)")
        }
    }

    @Test func aHeadFileRoundTripsAndRefusesWhatIsNotOne() throws {
        let f = try HeadFixture("use_head")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var head = f.head
        head.clipLevels = [4, 8]
        head.dinoLevels = [6, 12]
        head.clipDigest = "0123456789abcdef"
        let path = folder.path("head.safetensors")
        try head.write(to: path)
        let read = try UseHead(contentsOf: path)
        #expect(read.shape == head.shape && read.clipLevels == [4, 8] && read.dinoLevels == [6, 12])
        #expect(read.clipDigest == "0123456789abcdef" && read.dinoDigest == nil)
        for (name, _) in head.shape.parameters { #expect(read.parameters[name]!.toArray() == head.parameters[name]!.toArray(), "\(name)") }

        // Encoders: widths, then digests; a missing digest is a warning.
        #expect(try read.check(clipWidth: 64, embed: 32, clipDigest: "0123456789abcdef", dinoWidth: 48, dinoDigest: "ff")?.contains("no DINOv2 checkpoint") == true)
        #expect { try read.check(clipWidth: 768, embed: 32, clipDigest: nil, dinoWidth: 48, dinoDigest: nil) } throws: {
            "\($0)".contains("does not fit these encoders: CLIP width 768")
        }
        #expect { try read.check(clipWidth: 64, embed: 32, clipDigest: "aa", dinoWidth: 48, dinoDigest: nil) } throws: {
            "\($0)".contains("trained with the CLIP checkpoint of digest 0123456789abcdef; this one's is aa")
        }

        // Not a head: the old format, a wrong shape, a missing tensor, a stranger.
        func write(_ tensors: [(String, Tensor)], metadata: [String: String]) throws -> String {
            let file = folder.path("bad-\(UUID().uuidString).safetensors")
            try writeSafeTensors(tensors.map { ($0.0, .float32($0.1)) }, metadata: metadata, to: file)
            return file
        }
        let good = head.shape.parameters.map { ($0.name, head.parameters[$0.name]!) }
        let meta = ["format": UseHead.format, "clip_levels": "[1, 2]", "dino_levels": "[1, 2]"]
        let old = try write([("proj.weight", Tensor(shape: [4, 4], values: [Float](repeating: 0, count: 16)))], metadata: [:])
        #expect { try UseHead(contentsOf: old) } throws: { "\($0)".contains("no 'format' in its metadata") }
        let wrongShape = try write(good.map { $0.0 == "proj.weight" ? ($0.0, Tensor(shape: [32, 10], values: [Float](repeating: 0, count: 320))) : $0 }, metadata: meta)
        #expect { try UseHead(contentsOf: wrongShape) } throws: { "\($0)".contains("proj.weight is [32, 10]; a head of") && "\($0)".contains("has it [32, 192]") }
        let missing = try write(good.filter { $0.0 != "cls.scale" }, metadata: meta)
        #expect { try UseHead(contentsOf: missing) } throws: { "\($0)".contains("no cls.scale ([2])") }
        let stranger = try write(good + [("extra", Tensor(shape: [1], values: [0]))], metadata: meta)
        #expect { try UseHead(contentsOf: stranger) } throws: { "\($0)".contains("unexpected tensor 'extra'") }
        let levels = try write(good, metadata: meta.merging(["dino_levels": "[1]"]) { $1 })
        #expect { try UseHead(contentsOf: levels) } throws: { "\($0)".contains("dino.scale is [2]; a head of") }
        let badLevels = try write(good, metadata: meta.merging(["clip_levels": "two"]) { $1 })
        #expect { try UseHead(contentsOf: badLevels) } throws: { "\($0)".contains("'clip_levels' must be a JSON array of block numbers, not 'two'") }
        #expect { try UseHead(contentsOf: folder.path("absent.safetensors")) } throws: { "\($0)".contains("cannot read") }
    }
}
