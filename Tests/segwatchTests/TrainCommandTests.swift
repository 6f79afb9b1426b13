import Foundation
import SegwatchCheckpoint
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// A head fixture (`use_head`) as the files `segwatch train` reads: its batch as a features
/// shard, its parameters as a head file.
private struct FixtureFiles {
    let parity: ParityFixture
    let names: [String]
    let shard: String
    let head: String

    init(_ fixture: String, in folder: TemporaryFolder) throws {
        parity = try ParityFixture(fixture)
        names = parity.tensors.names.filter { $0.hasPrefix("param.") }.map { String($0.dropFirst("param.".count)) }
        let levels = { (count: Int) in "[" + (1...count).map(String.init).joined(separator: ", ") + "]" }
        let lc = try parity.tensor("input.clip_levels").shape[0], ld = try parity.tensor("input.dino_levels").shape[0]
        let meta = { (format: String) in ["format": format, "clip_levels": levels(lc), "dino_levels": levels(ld)] }
        shard = folder.path("features.safetensors")
        let target = try parity.tensor("input.target").toArray().map { Int64($0) }
        try writeSafeTensors([
            ("use", .float32(try parity.tensor("input.use"))), ("clip.levels", .float32(try parity.tensor("input.clip_levels"))),
            ("dino.levels", .float32(try parity.tensor("input.dino_levels"))), ("clip.image", .float32(try parity.tensor("input.clip_image"))),
            ("dino.cls", .float32(try parity.tensor("input.dino_cls"))), ("text.embeds", .float32(try parity.tensor("input.text"))),
            ("target", .int64(shape: [target.count], values: target)),
        ], metadata: meta("segwatch-use-features/1"), to: shard)
        head = folder.path("init.safetensors")
        try writeSafeTensors(try names.map { ($0, .float32(try parity.tensor("param.\($0)"))) }, metadata: meta("segwatch-use-head/1"), to: head)
    }
}

@Suite struct TrainCommandTests {
    // The contract: one step from --init on a shard of N segments, batch N, no shuffle, is the
    // fixture's loss, then AdamW's first step (zero moments) on the fixture's gradients,
    // computed here in double from its formula.
    @Test(arguments: ["use_head", Fixtures.packageRoot.appendingPathComponent("Tests/SegwatchUSETests/small_head").path])
    func oneStepIsTheFixturesStep(fixture: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let files = try FixtureFiles(fixture, in: folder)
        let batch = try files.parity.tensor("input.use").shape[0]
        let (lr, decay) = (0.002, 0.07)
        let result = try runProcess(segwatch, ["train", "--features", files.shard, "--init", files.head, "--steps", "1", "--batch-size", "\(batch)",
                                               "--no-shuffle", "--lr", "\(lr)", "--weight-decay", "\(decay)", "--warmup", "0",
                                               "--schedule", "constant", "--out", folder.path("out.safetensors"), "--log", folder.path("log.jsonl")],
                                    timeout: 120)
        #expect(result.status == 0, "\(result.errorOutput)")
        let lines = jsonLines(folder.path("log.jsonl"))
        let loss = try #require(lines.first?["loss"] as? Double)
        let lossCheck = try files.parity.check(Tensor(shape: [], values: [Float(loss)]), key: "loss")
        #expect(lossCheck.passed, "\(lossCheck)")
        #expect(lines.first?["lr"] as? Double == lr && lines.first?["step"] as? Int == 1)
        let out = try StateDict.load(folder.path("out.safetensors"))
        #expect(out.metadata["format"] == "segwatch-use-head/1")
        for name in files.names {
            let p = try files.parity.tensor("param.\(name)").toArray().map { Double($0) }
            let g = try files.parity.tensor("grad.\(name)").toArray().map { Double($0) }
            let keep = name == "proj.weight" ? 1 - lr * decay : 1
            let expected = zip(p, g).map { p, g -> Float in
                let m = (1 - 0.9) * g, v = (1 - 0.999) * g * g
                return Float(p * keep - lr / (1 - 0.9) * m / ((v / (1 - 0.999)).squareRoot() + 1e-8))
            }
            let actual = try out.tensor(name).contiguous()
            let tolerance = try #require(files.parity.tolerances["adamw.after.param.\(name)"])
            let comparison = compare(actual, Tensor(shape: actual.shape, values: expected), atol: tolerance.atol, name: name)
            #expect(comparison.passed, "\(comparison)")
        }
        // The optimizer's state is written beside the head: a resumed run goes on from step 1.
        #expect(FileManager.default.fileExists(atPath: folder.path("out.safetensors.state")))
        let resumed = try runProcess(segwatch, ["train", "--features", files.shard, "--resume", "--steps", "2", "--batch-size", "\(batch)",
                                                "--no-shuffle", "--lr", "\(lr)", "--schedule", "constant", "--out", folder.path("out.safetensors"),
                                                "--log", folder.path("log.jsonl")], timeout: 120)
        #expect(resumed.status == 0, "\(resumed.errorOutput)")
        #expect(jsonLines(folder.path("log.jsonl")).compactMap { $0["step"] as? Int } == [1, 2])
    }

    // Each of 24 texts names one segment, and the training-free embeddings point nowhere near
    // them: validation top-1 starts low and training on the same set brings it to at least 95 %.
    @Test func trainingLearnsWhichTextNamesWhichSegment() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var random = SplitMix(seed: 24)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float(Double(random.next() % 2_000_001) / 1_000_000 - 1) } }
        let (n, e, dc, dd) = (24, 16, 20, 12)
        var text = values(n * e)
        for row in 0..<n {
            let norm = text[(row * e)..<((row + 1) * e)].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for j in 0..<e { text[row * e + j] /= norm }
        }
        let shard = folder.path("pairs.safetensors")
        try writeSafeTensors([
            ("use", .float32(Tensor(shape: [n, e], values: values(n * e)))),
            ("clip.levels", .float32(Tensor(shape: [2, n, dc], values: values(2 * n * dc)))),
            ("dino.levels", .float32(Tensor(shape: [1, n, dd], values: values(n * dd)))),
            ("clip.image", .float32(Tensor(shape: [n, e], values: values(n * e)))),
            ("dino.cls", .float32(Tensor(shape: [n, dd], values: values(n * dd)))),
            ("text.embeds", .float32(Tensor(shape: [n, e], values: text))),
            ("target", .int64(shape: [n], values: (0..<n).map { Int64($0) })),
        ], metadata: ["format": "segwatch-use-features/1", "clip_levels": "[6, 12]", "dino_levels": "[12]"], to: shard)
        let result = try runProcess(segwatch, ["train", "--features", shard, "--val", shard, "--epochs", "150", "--batch-size", "8",
                                               "--lr", "0.01", "--warmup", "10", "--seed", "3", "--out", folder.path("head.safetensors"),
                                               "--log", folder.path("log.jsonl")], timeout: 300)
        #expect(result.status == 0, "\(result.errorOutput)")
        let lines = jsonLines(folder.path("log.jsonl"))
        let before = try #require(lines.first?["val_top1_before"] as? Double)
        let after = try #require(lines.last(where: { $0["val_top1"] != nil })?["val_top1"] as? Double)
        #expect(before < 0.5, "top-1 before training: \(before)")
        #expect(after >= 0.95, "top-1 after training: \(after) (before: \(before))")
        #expect(lines.filter { $0["loss"] != nil }.count == 150 * 3)
    }

    @Test func badInputsAreOneClearLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let files = try FixtureFiles("use_head", in: folder)
        let otherFolder = try TemporaryFolder()
        defer { otherFolder.remove() }
        let other = try FixtureFiles(Fixtures.packageRoot.appendingPathComponent("Tests/SegwatchUSETests/small_head").path, in: otherFolder)
        let cases: [([String], String)] = [
            (["--features", folder.path("missing.safetensors")], "no such file or folder"),
            (["--features", files.head], "not a features shard (segwatch-use-features/1): its format is 'segwatch-use-head/1'"),
            (["--features", files.shard, "--init", other.head], "do not fit the head"),
            (["--features", files.shard, "--batch-size", "0"], "--batch-size must be positive"),
        ]
        for (arguments, message) in cases {
            let result = try runProcess(segwatch, ["train"] + arguments + ["--out", folder.path("out.safetensors")], timeout: 60)
            #expect(result.status != 0 && result.errorOutput.contains(message), "\(arguments): \(result.errorOutput)")
        }
    }
}

@Suite struct FeaturesCommandTests {
    static let pairs = """
        {"image": "bus.png", "segmentation": {"size": [480, 360], "counts": [0, 172800]}, "texts": ["a bus", "the whole picture"], "granularity": "object"}
        {"image": "street_car.png", "segmentation": {"size": [322, 480], "counts": [40000, 50000, 64560]}, "texts": ["a car"]}
        {"image": "street_car.png", "segmentation": {"size": [10, 10], "counts": [100]}, "texts": ["wrong size"]}
        {"image": "missing.png", "segmentation": {"size": [10, 10], "counts": [100]}, "texts": ["nothing"]}
        {"image": "bus.png", "texts": []}
        {"image": "street_car.png", "segmentation": {"size": [322, 480], "counts": [100000, 54560]}, "texts": ["the road", "a car"]}
        """

    private func features(_ folder: TemporaryFolder, _ extra: [String] = []) throws -> ProcessResult {
        try runProcess(segwatch, ["features", "--pairs", folder.path("pairs.jsonl"), "--images", Fixtures.root.appendingPathComponent("images").path,
                                  "--clip", Fixtures.root.appendingPathComponent("clip_hf").path, "--dino", Fixtures.root.appendingPathComponent("dinov2").path,
                                  "--clip-size", "64", "--dino-size", "56", "--clip-levels", "1,3", "--dino-levels", "2", "--shard-size", "1",
                                  "--out", folder.path("out"), "--threads", "2"] + extra, timeout: 300)
    }

    // Pairs in, shards of whole pictures out, each invalid line named and skipped; the shards
    // train; an interrupted run continues and writes the same bytes; --strict refuses.
    @Test func pairsBecomeShardsThatTrain() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try Self.pairs.write(toFile: folder.path("pairs.jsonl"), atomically: true, encoding: .utf8)
        let result = try features(folder)
        #expect(result.status == 0, "\(result.errorOutput)")
        for line in [":3: a 10x10 mask for the 480x322 picture street_car.png", ":4: cannot open", ":5: no \"texts\""] {
            #expect(result.errorOutput.contains("pairs.jsonl\(line)"), "\(line): \(result.errorOutput)")
        }
        let first = try StateDict.load(folder.path("out/shard-00000.safetensors"))
        let second = try StateDict.load(folder.path("out/shard-00001.safetensors"))
        #expect(first.metadata["format"] == "segwatch-use-features/1" && first.metadata["clip_levels"] == "[1, 3]" && first.metadata["dino_levels"] == "[2]")
        #expect(first.metadata["clip_digest"]?.count == 16 && first.metadata["dino_digest"]?.count == 16)
        #expect(first.entries["use"]?.shape == [1, 32] && first.entries["clip.levels"]?.shape == [2, 1, 64])
        #expect(first.entries["dino.levels"]?.shape == [1, 1, 48] && first.entries["dino.cls"]?.shape == [1, 48])
        #expect(first.entries["text.embeds"]?.shape == [2, 32] && first.entries["targets"]?.shape == [1, 2])
        // The street car's two segments share a shard and its texts: "a car" once.
        #expect(second.entries["use"]?.shape == [2, 32] && second.entries["text.embeds"]?.shape == [2, 32])
        #expect(try second.tensor("targets").toArray() == [0, -1, 1, 0])
        let text = try second.tensor("text.embeds").toArray()
        #expect(abs(text[0..<32].reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)

        let trained = try runProcess(segwatch, ["train", "--features", folder.path("out"), "--steps", "2", "--batch-size", "2",
                                                "--out", folder.path("head.safetensors")], timeout: 120)
        #expect(trained.status == 0, "\(trained.errorOutput)")

        // Interrupted after the first shard: the second is written again, the same bytes.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder.path("out/shard-00001.safetensors")))
        try FileManager.default.removeItem(atPath: folder.path("out/shard-00001.safetensors"))
        var state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path("out/progress.json")))) as? [String: Any])
        (state["pictures"], state["shards"], state["segments"]) = (1, 1, 1)
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: folder.path("out/progress.json")))
        let resumed = try features(folder)
        #expect(resumed.status == 0 && resumed.errorOutput.contains("continuing after 1 of 3 pictures"), "\(resumed.errorOutput)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path("out/shard-00001.safetensors"))) == bytes)

        let other = try runProcess(segwatch, ["features", "--pairs", folder.path("pairs.jsonl"), "--images", Fixtures.root.appendingPathComponent("images").path,
                                              "--clip", Fixtures.root.appendingPathComponent("clip_hf").path, "--dino", Fixtures.root.appendingPathComponent("dinov2").path,
                                              "--clip-size", "32", "--out", folder.path("out")], timeout: 120)
        #expect(other.status != 0 && other.errorOutput.contains("holds features of other pairs or settings"), "\(other.errorOutput)")
        let strict = try features(folder, ["--strict", "--out", folder.path("strict")])
        #expect(strict.status != 0 && strict.errorOutput.contains("pairs.jsonl:5: no \"texts\""), "\(strict.errorOutput)")
    }
}

@Suite struct TrainEndToEndTests {
    static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/segwatchTests/TrainEndToEnd")

    // Hand-made COCO annotations of two fixture pictures (polygons, a merged pair of polygons,
    // an uncompressed RLE, one polygon too short) -> pairs -> features (fixture CLIP and
    // DINOv2) -> three steps of train --no-shuffle, against the same in PyTorch
    // (make_train_references.py: pycocotools, transformers, head_forward, torch.optim.AdamW):
    // every head input, the three losses and the final parameters under its tolerances.
    @Test func pairsFeaturesAndTrainingMatchPyTorch() throws {
        let reference = try ParityFixture(Self.folder.path)
        let work = try TemporaryFolder()
        defer { work.remove() }
        let pairs = try runProcess(segwatch, ["pairs", "--coco-instances", Self.folder.appendingPathComponent("instances.json").path,
                                              "--out", work.path("pairs.jsonl")], timeout: 60)
        #expect(pairs.status == 0 && pairs.errorOutput.contains("annotation 106"), "\(pairs.errorOutput)")
        let features = try runProcess(segwatch, ["features", "--pairs", work.path("pairs.jsonl"), "--images", Fixtures.root.appendingPathComponent("images").path,
                                                 "--clip", Fixtures.root.appendingPathComponent("clip_hf").path,
                                                 "--dino", Fixtures.root.appendingPathComponent("dinov2").path, "--clip-size", "64", "--dino-size", "56",
                                                 "--clip-levels", "1,3", "--dino-levels", "2", "--out", work.path("features"), "--threads", "2"], timeout: 300)
        #expect(features.status == 0, "\(features.errorOutput)")
        let shard = try StateDict.load(work.path("features/shard-00000.safetensors"))
        for (name, key) in [("use", "use"), ("clip.levels", "clip_levels"), ("dino.levels", "dino_levels"), ("clip.image", "clip_image"),
                            ("dino.cls", "dino_cls")] {
            let comparison = try reference.check(try shard.tensor(name).contiguous(), key: "input.\(key)")
            #expect(comparison.passed, "\(comparison)")
        }
        let train = try runProcess(segwatch, ["train", "--features", work.path("features"), "--no-shuffle", "--steps", "3", "--batch-size", "256",
                                              "--lr", "0.001", "--weight-decay", "0.05", "--warmup", "0", "--schedule", "cosine",
                                              "--logit-scale", "4.0", "--out", work.path("head.safetensors"), "--log", work.path("log.jsonl")],
                                   timeout: 120)
        #expect(train.status == 0, "\(train.errorOutput)")
        let losses = jsonLines(work.path("log.jsonl")).compactMap { $0["loss"] as? Double }.map { Float($0) }
        let lossCheck = try reference.check(Tensor(shape: [losses.count], values: losses), key: "losses")
        #expect(lossCheck.passed, "\(lossCheck)")
        let head = try StateDict.load(work.path("head.safetensors"))
        for name in head.names {
            let comparison = try reference.check(try head.tensor(name).contiguous(), key: "param.\(name)")
            #expect(comparison.passed, "\(comparison)")
        }

        // Each of the five texts names one segment: training on the set lifts its validation
        // top-1 from where the training-free embedding (random fixture weights) leaves it to 95 %+.
        let fit = try runProcess(segwatch, ["train", "--features", work.path("features"), "--val", work.path("features"), "--epochs", "300",
                                            "--batch-size", "5", "--lr", "0.01", "--warmup", "20", "--seed", "1",
                                            "--out", work.path("fit.safetensors"), "--log", work.path("fit.jsonl")], timeout: 300)
        #expect(fit.status == 0, "\(fit.errorOutput)")
        let lines = jsonLines(work.path("fit.jsonl"))
        let before = try #require(lines.first?["val_top1_before"] as? Double)
        let after = try #require(lines.last(where: { $0["val_top1"] != nil })?["val_top1"] as? Double)
        #expect(before < 0.95 && after >= 0.95, "top-1 \(before) before, \(after) after")
    }
}

@Suite struct PairsCommandTests {
    // RefCOCO-style refs over the end-to-end test's COCO annotations: each referred annotation
    // once, with its mask as --coco-instances makes it (checked against pycocotools by
    // the end-to-end test) and the sentences of all its refs, each once, in order; --split
    // keeps that split's refs; a ref to an unknown or unusable annotation, or without
    // sentences, named; a pickle refused with the way to convert it.
    @Test func referringExpressionsBecomePairs() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let instances = TrainEndToEndTests.folder.appendingPathComponent("instances.json").path
        try """
            [{"ref_id": 1, "ann_id": 101, "image_id": 7, "split": "train",
              "sentences": [{"sent": "the big bus", "raw": "The big bus."}, {"raw": "bus on the left"}]},
             {"ref_id": 2, "ann_id": 103, "split": "train", "sentences": ["the red car"]},
             {"ref_id": 3, "ann_id": 101, "split": "train", "sentences": [{"sent": "the big bus"}, {"sent": "a bus"}]},
             {"ref_id": 4, "ann_id": 999, "split": "train", "sentences": ["nothing"]},
             {"ref_id": 5, "ann_id": 104, "split": "val", "sentences": ["the road"]},
             {"ref_id": 6, "ann_id": 105, "split": "train", "sentences": []},
             {"ref_id": 7, "ann_id": 106, "split": "train", "sentences": ["a car"]}]
            """.write(toFile: folder.path("refs.json"), atomically: true, encoding: .utf8)
        let coco = try runProcess(segwatch, ["pairs", "--coco-instances", instances, "--out", folder.path("coco.jsonl")], timeout: 60)
        #expect(coco.status == 0, "\(coco.errorOutput)")
        // --coco-instances keeps every annotation but 106, in order: 101 ... 105.
        let masks = Dictionary(uniqueKeysWithValues: zip([101, 102, 103, 104, 105], jsonLines(folder.path("coco.jsonl")).map {
            NSDictionary(dictionary: $0["segmentation"] as? [String: Any] ?? [:])
        }))
        let result = try runProcess(segwatch, ["pairs", "--refs", folder.path("refs.json"), "--coco-instances", instances, "--split", "train",
                                               "--out", folder.path("pairs.jsonl")], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        for expected in ["refs.json: ref 4: ann_id 999: no such annotation", "refs.json: ref 6: no \"sentences\"",
                         "refs.json: ref 7: ann_id 106: \(instances): annotation 106: its segmentation"] {
            #expect(result.errorOutput.contains(expected), "\(expected): \(result.errorOutput)")
        }
        let lines = jsonLines(folder.path("pairs.jsonl"))
        #expect(lines.map { $0["texts"] as? [String] ?? [] } == [["the big bus", "bus on the left", "a bus"], ["the red car"]])
        #expect(lines.map { $0["image"] as? String ?? "" } == ["bus.png", "street_car.png"])
        #expect(lines.count == 2 && NSDictionary(dictionary: lines[0]["segmentation"] as? [String: Any] ?? [:]) == masks[101]
                && NSDictionary(dictionary: lines[1]["segmentation"] as? [String: Any] ?? [:]) == masks[103])
        let schema = try JSONSchema(contentsOf: Fixtures.packageRoot.appendingPathComponent("docs/pairs.schema.json"))
        let text = try String(contentsOfFile: folder.path("pairs.jsonl"), encoding: .utf8)
        for line in text.split(separator: "\n") { #expect(schema.violations(of: Data(line.utf8)).isEmpty, "\(line.prefix(80))") }

        let every = try runProcess(segwatch, ["pairs", "--refs", folder.path("refs.json"), "--coco-instances", instances, "--out", folder.path("all.jsonl")],
                                   timeout: 60)
        #expect(every.status == 0 && jsonLines(folder.path("all.jsonl")).compactMap { ($0["texts"] as? [String])?.first } == ["the big bus", "the red car", "the road"])
        let strict = try runProcess(segwatch, ["pairs", "--refs", folder.path("refs.json"), "--coco-instances", instances, "--strict",
                                               "--out", folder.path("strict.jsonl")], timeout: 60)
        #expect(strict.status != 0 && strict.errorOutput.contains("ref 4"), "\(strict.errorOutput)")
        try Data([0x80, 0x02, 0x5D, 0x71, 0x00, 0x2E]).write(to: URL(fileURLWithPath: folder.path("refs.p")))
        let pickle = try runProcess(segwatch, ["pairs", "--refs", folder.path("refs.p"), "--coco-instances", instances, "--out", folder.path("p.jsonl")],
                                    timeout: 60)
        #expect(pickle.status != 0 && pickle.errorOutput.contains("refs.p: not refs as JSON") && pickle.errorOutput.contains("pickle.load"),
                "\(pickle.errorOutput)")
    }

    // Boxes through SAM (the fixture MobileSAM: random weights, so the masks' content is not
    // checked): one pair per distinct segment, a repeated box merged into one with both texts
    // (no text twice), bad lines and missing pictures named by line, every line valid under
    // docs/pairs.schema.json; --strict refuses.
    @Test func boxesBecomePairs() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try """
            {"image": "bus.png", "box": [40, 100, 320, 390], "text": "a bus"}
            {"image": "bus.png", "box": [40, 100, 320, 390], "texts": ["the bus", "a bus"], "granularity": "object"}
            {"image": "street_car.png", "box": [100, 140, 400, 270], "text": "a car", "granularity": "part"}
            {"image": "street_car.png", "box": [10, 10, 5, 50], "text": "bad box"}
            {"image": "missing.png", "box": [1, 1, 5, 5], "text": "x"}
            """.write(toFile: folder.path("boxes.jsonl"), atomically: true, encoding: .utf8)
        let arguments = ["pairs", "--boxes", folder.path("boxes.jsonl"), "--images", Fixtures.root.appendingPathComponent("images").path,
                         "--sam", Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path, "--threads", "2"]
        let result = try runProcess(segwatch, arguments + ["--out", folder.path("pairs.jsonl")], timeout: 300)
        #expect(result.status == 0, "\(result.errorOutput)")
        #expect(result.errorOutput.contains("boxes.jsonl:4: no \"box\"") && result.errorOutput.contains("boxes.jsonl:5: cannot open"), "\(result.errorOutput)")
        let lines = jsonLines(folder.path("pairs.jsonl"))
        #expect(lines.map { $0["texts"] as? [String] ?? [] } == [["a bus", "the bus"], ["a car"]])
        #expect(lines.map { ($0["segmentation"] as? [String: Any])?["size"] as? [Int] ?? [] } == [[480, 360], [322, 480]])
        #expect(lines[1]["granularity"] as? String == "part")
        let schema = try JSONSchema(contentsOf: Fixtures.packageRoot.appendingPathComponent("docs/pairs.schema.json"))
        let text = try String(contentsOfFile: folder.path("pairs.jsonl"), encoding: .utf8)
        for line in text.split(separator: "\n") { #expect(schema.violations(of: Data(line.utf8)).isEmpty, "\(line.prefix(80))") }
        let strict = try runProcess(segwatch, arguments + ["--strict", "--out", folder.path("strict.jsonl")], timeout: 300)
        #expect(strict.status != 0 && strict.errorOutput.contains("boxes.jsonl:4"), "\(strict.errorOutput)")
    }
}
