import SegwatchBackends
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import SegwatchUSE

/// `segwatch features`: every USE head input of each segment of a pairs file, computed once, in
/// shards (`segwatch-use-features/1`) of whole pictures, at least `shardSize` segments each but
/// the last, so memory is bounded by one shard. Each picture is seen whole by each encoder at
/// its size (`FrameFeaturizer`, as the labeling sees a frame); the descriptions are embedded by
/// CLIP's text tower, normalized. An interrupted job continues where it stopped
/// (`progress.json` in `out`, refused when it belongs to other pairs or settings).
public struct FeatureExtraction: Sendable {
    public var pairs: String
    public var images: String
    public var clip: String
    public var dino: String
    /// Blocks whose hidden states the head reads (1-based); nil: the middle one and the last.
    public var clipLevels: [Int]?
    public var dinoLevels: [Int]?
    public var clipSize = 448
    public var dinoSize = 448
    public var shardSize = 4096
    /// Refuse the job at the first line or picture that cannot be used, instead of skipping it.
    public var strict = false
    public var threads = 2
    /// Where the models run (`--backend`, `--device`).
    public var backendChoice = BackendChoice.cpu
    public var device: Int?
    public var out: String

    public init(pairs: String, images: String, clip: String, dino: String, out: String) {
        (self.pairs, self.images, self.clip, self.dino, self.out) = (pairs, images, clip, dino, out)
    }

    public struct Summary: Sendable {
        public var segments: Int
        public var pictures: Int
        public var shards: Int
    }

    /// Where an interrupted job stands: the pictures done and the shards written, for these
    /// pairs and settings.
    private struct State: Codable, Equatable {
        var pairs: String
        var settings: String
        var pictures: Int
        var shards: Int
        var segments: Int
    }

    /// Runs the job. `warn` hears of each line or picture skipped, `note` of a job continued,
    /// `progress(pictures done, pictures, segments so far)` follows the pictures.
    public func run(warn: (String) -> Void, note: (String) -> Void = { _ in },
                    progress: (Int, Int, Int) -> Void = { _, _, _ in }) throws -> Summary {
        let (read, problems) = try readSegmentTextPairs(pairs)
        if let first = problems.first, strict { throw ServiceError(first) }
        for problem in problems { warn("\(problem): skipped") }
        let backend = try backendChoice.open(threads: threads, device: device)
        let clipModel = try CLIP.load(clip, backend: backend)
        let dinoModel = try Dinov2Model.load(dino, backend: backend)
        let clipLevels = clipLevels ?? [clipModel.vision.depth / 2, clipModel.vision.depth]
        let dinoLevels = dinoLevels ?? [dinoModel.config.layers / 2, dinoModel.config.layers]
        guard clipLevels.allSatisfy({ (0...clipModel.vision.depth).contains($0) }) else {
            throw ServiceError("--clip-levels \(clipLevels): this CLIP has blocks 1...\(clipModel.vision.depth)")
        }
        guard dinoLevels.allSatisfy({ (0...dinoModel.config.layers).contains($0) }) else {
            throw ServiceError("--dino-levels \(dinoLevels): this DINOv2 has layers 1...\(dinoModel.config.layers)")
        }
        let featurizer = FrameFeaturizer(clip: clipModel, backend: backend, clipSize: clipSize, clipLevels: clipLevels, dino: dinoModel,
                                         dinoSize: dinoSize, dinoLevels: dinoLevels)
        try featurizer.checkSizes()
        let tokenizer = try CLIPTokenizer.forModel(clip)
        let (clipDigest, dinoDigest) = (hexDigest(try CLIPFiles.digest(clip)), hexDigest(try DINOv2Files.digest(dino)))
        let shape = UseHeadShape(embed: clipModel.config.embedDim, clipWidth: clipModel.config.vision.width,
                                 dinoWidth: dinoModel.config.hiddenSize, clipLevels: clipLevels.count, dinoLevels: dinoLevels.count)
        func builder() -> FeatureShardBuilder {
            FeatureShardBuilder(shape: shape, clipLevels: clipLevels, dinoLevels: dinoLevels, clipDigest: clipDigest, dinoDigest: dinoDigest)
        }

        let order = groupedByImage(read, image: \.image)
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let progressFile = folder.appendingPathComponent("progress.json")
        let settings = "\(clipDigest) \(dinoDigest) \(clipLevels) \(dinoLevels) \(clipSize) \(dinoSize) \(shardSize)"
        var state = State(pairs: hexDigest(try fileDigest(pairs)), settings: settings, pictures: 0, shards: 0, segments: 0)
        if let data = try? Data(contentsOf: progressFile), let saved = try? JSONDecoder().decode(State.self, from: data) {
            guard saved.pairs == state.pairs, saved.settings == state.settings else {
                throw ServiceError("--out \(out) holds features of other pairs or settings (progress.json); choose another folder")
            }
            state = saved
            if state.pictures > 0 { note("continuing after \(state.pictures) of \(order.count) pictures (\(state.shards) shards)") }
        }
        var shard = builder()
        func flush() throws {
            guard shard.count > 0 else { return }
            let ids = shard.texts.map(tokenizer.tokenize)
            var embeddings: [Float] = []
            for start in stride(from: 0, to: ids.count, by: 64) {
                let rows = backend.download(try clipModel.text(Array(ids[start..<min(ids.count, start + 64)])))
                let width = rows.shape[1], values = rows.toArray()
                for r in 0..<rows.shape[0] { embeddings += normalized(values[(r * width)..<((r + 1) * width)]) }
            }
            let name = String(format: "shard-%05d.safetensors", state.shards)
            try shard.write(to: folder.appendingPathComponent(name).path,
                            textEmbeddings: Tensor(shape: [shard.texts.count, shape.embed], values: embeddings))
            state.shards += 1
            state.segments += shard.count
            shard = builder()
        }
        try backend.runOnHost {
            for (index, (image, list)) in order.enumerated() where index >= state.pictures {
                progress(index, order.count, state.segments + shard.count)
                let picture: RGBImage
                do { picture = try loadRGBImage(URL(fileURLWithPath: images).appendingPathComponent(image).path, frame: 0) } catch {
                    let message = "\(pairs):\(list[0].line): \(error)"
                    if strict { throw ServiceError(message) }
                    warn("\(message): its \(list.count) pairs skipped")
                    continue
                }
                var kept: [SegmentTextPair] = []
                for pair in list {
                    if pair.mask.height == picture.height && pair.mask.width == picture.width { kept.append(pair); continue }
                    let message = "\(pairs):\(pair.line): a \(pair.mask.width)x\(pair.mask.height) mask for the \(picture.width)x\(picture.height) picture \(image)"
                    if strict { throw ServiceError(message) }
                    warn("\(message): skipped")
                }
                if !kept.isEmpty {
                    let (input, present) = try headInputs(featurizer(picture), masks: kept.map(\.mask))
                    for n in kept.indices where !present.contains(n) { warn("\(pairs):\(kept[n].line): its mask covers no patch: skipped") }
                    if !present.isEmpty { try shard.append(input, descriptions: present.map { kept[$0].texts }) }
                }
                if shard.count >= shardSize {
                    try flush()
                    state.pictures = index + 1
                    try JSONEncoder().encode(state).write(to: progressFile, options: .atomic)
                }
            }
            try flush()
            state.pictures = order.count
            try JSONEncoder().encode(state).write(to: progressFile, options: .atomic)
        }
        return Summary(segments: state.segments, pictures: order.count, shards: state.shards)
    }
}
