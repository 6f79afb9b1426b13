// Features shards: every head input of a set of segments, computed once (`segwatch features`),
// and the text embeddings of their descriptions, for training (`segwatch train`).
//
//     use [N, E], clip.levels [Lc, N, Dc], dino.levels [Ld, N, Dd], clip.image [N, E], dino.cls [N, Dd]
//     text.embeds [U, E] (unit rows), target [N] (int64: each segment's first description)
//     targets [N, K] (optional, int64: every description of each segment, padded with -1)
//
// metadata: format = segwatch-use-features/1, clip_levels, dino_levels, clip_digest, dino_digest.
import Foundation
import SegwatchCheckpoint
import SegwatchTensor

/// One shard, its tensors mapped from the file (float32 views, not copies).
public struct FeatureShard: Sendable {
    public static let format = "segwatch-use-features/1"

    public let path: String
    public let shape: UseHeadShape
    public let count: Int
    public let clipLevels: [Int]
    public let dinoLevels: [Int]
    public let clipDigest: String?
    public let dinoDigest: String?
    let use, clipLevelFeatures, dinoLevelFeatures, clipImage, dinoCLS: Tensor
    /// `[U, E]`.
    public let text: Tensor
    /// Each segment's descriptions (rows of `text`), its first description first.
    public let descriptions: [[Int]]

    public init(contentsOf path: String) throws(USEError) {
        let (file, fail) = try openFile(path, format: Self.format, kind: "a features shard")
        (clipLevels, dinoLevels) = (try levels(file, "clip_levels", fail), try levels(file, "dino_levels", fail))
        (clipDigest, dinoDigest) = (file.metadata["clip_digest"], file.metadata["dino_digest"])
        func shape(_ name: String, rank: Int) throws(USEError) -> [Int] {
            guard let entry = file.entries[name] else { throw fail("no tensor '\(name)'") }
            guard entry.shape.count == rank else { throw fail("'\(name)' is \(entry.shape); expected \(rank) dimensions") }
            return entry.shape
        }
        let useShape = try shape("use", rank: 2), clip = try shape("clip.levels", rank: 3), dino = try shape("dino.levels", rank: 3)
        let (n, embed) = (useShape[0], useShape[1])
        let headShape = UseHeadShape(embed: embed, clipWidth: clip[2], dinoWidth: dino[2], clipLevels: clip[0], dinoLevels: dino[0])
        let textShape = try shape("text.embeds", rank: 2)
        let expected: [(String, [Int])] = [
            ("clip.levels", [clipLevels.count, n, clip[2]]), ("dino.levels", [dinoLevels.count, n, dino[2]]),
            ("clip.image", [n, embed]), ("dino.cls", [n, dino[2]]), ("text.embeds", [textShape[0], embed]), ("target", [n]),
        ]
        var tensors: [String: Tensor] = [:]
        for (name, want) in [("use", [n, embed])] + expected {
            guard let entry = file.entries[name] else { throw fail("no tensor '\(name)'") }
            guard entry.shape == want else { throw fail("'\(name)' is \(entry.shape); with \(n) segments of \(headShape) it is \(want)") }
            do { tensors[name] = try file.tensor(name) } catch { throw fail("'\(name)': \(error)") }
        }
        let texts = textShape[0]
        let first = tensors["target"]!.toArray().map { Int($0) }
        var descriptions = first.map { [$0] }
        if let entry = file.entries["targets"] {
            guard entry.shape.count == 2, entry.shape[0] == n else { throw fail("'targets' is \(entry.shape); expected [\(n), K]") }
            let all: [Float]
            do { all = try file.tensor("targets").contiguous().toArray() } catch { throw fail("'targets': \(error)") }
            let k = entry.shape[1]
            descriptions = (0..<n).map { row in all[(row * k)..<((row + 1) * k)].map { Int($0) }.filter { $0 >= 0 } }
            for (row, list) in descriptions.enumerated() where list.first != first[row] {
                throw fail("segment \(row)'s descriptions \(list) do not start with its target \(first[row])")
            }
        }
        if let row = descriptions.firstIndex(where: { $0.isEmpty || $0.contains { !(0..<texts).contains($0) } }) {
            throw fail("segment \(row)'s descriptions \(descriptions[row]) are not rows of the \(texts) texts")
        }
        if let extra = file.names.first(where: { tensors[$0] == nil && $0 != "targets" }) { throw fail("unexpected tensor '\(extra)'") }
        self.path = path
        self.shape = headShape
        count = n
        use = tensors["use"]!
        clipLevelFeatures = tensors["clip.levels"]!
        dinoLevelFeatures = tensors["dino.levels"]!
        clipImage = tensors["clip.image"]!
        dinoCLS = tensors["dino.cls"]!
        text = tensors["text.embeds"]!.contiguous()
        self.descriptions = descriptions
    }

}

/// A features shard or a folder of them (every `*.safetensors` in name order), as one set: the
/// segments in order, the shards' texts one table (each shard's rows after the previous').
public struct FeatureSet: Sendable {
    public let shards: [FeatureShard]
    /// Segment n is row `index[n].row` of shard `index[n].shard`.
    let index: [(shard: Int, row: Int)]
    /// Where each shard's text rows start in the joined table.
    let textOffsets: [Int]
    /// `[U, E]`: every shard's texts.
    public let text: Tensor

    public var count: Int { index.count }
    public var shape: UseHeadShape { shards[0].shape }

    public init(_ path: String) throws(USEError) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw .unreadable(path: path, reason: "no such file or folder") }
        var files = [path]
        if isFolder.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch { throw .unreadable(path: path, reason: "\(error)") }
            files = names.filter { $0.hasSuffix(".safetensors") }.sorted().map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
            guard !files.isEmpty else { throw .unusable(path: path, reason: "no features shards (*.safetensors) in this folder") }
        }
        var shards: [FeatureShard] = []
        for file in files { shards.append(try FeatureShard(contentsOf: file)) }
        let first = shards[0]
        for shard in shards.dropFirst() {
            guard shard.shape == first.shape, shard.clipLevels == first.clipLevels, shard.dinoLevels == first.dinoLevels else {
                throw .unusable(path: shard.path, reason: "its features (\(shard.shape), levels \(shard.clipLevels) and \(shard.dinoLevels)) are not those of \(first.path) (\(first.shape), levels \(first.clipLevels) and \(first.dinoLevels))")
            }
            guard shard.clipDigest == first.clipDigest, shard.dinoDigest == first.dinoDigest else {
                throw .unusable(path: shard.path, reason: "its features come from other encoders than \(first.path)'s (digests \(shard.clipDigest ?? "none")/\(shard.dinoDigest ?? "none"), not \(first.clipDigest ?? "none")/\(first.dinoDigest ?? "none"))")
            }
        }
        self.shards = shards
        index = shards.enumerated().flatMap { s, shard in (0..<shard.count).map { (s, $0) } }
        var offsets: [Int] = [], total = 0
        for shard in shards { offsets.append(total); total += shard.text.shape[0] }
        textOffsets = offsets
        text = concat(shards.map(\.text), dim: 0)
    }

    /// Segment `n`'s descriptions, as rows of `text`.
    public func descriptions(_ n: Int) -> [Int] {
        let (shard, row) = index[n]
        return shards[shard].descriptions[row].map { $0 + textOffsets[shard] }
    }

    /// The head's input for segments `segments`, in that order.
    public func batch(_ segments: [Int]) -> UseHeadInput {
        func gather(_ tensor: (FeatureShard) -> Tensor, dim: Int) -> Tensor {
            concat(segments.map { n in tensor(shards[index[n].shard]).sliced(dim, index[n].row..<(index[n].row + 1)) }, dim: dim).contiguous()
        }
        return UseHeadInput(use: gather(\.use, dim: 0), clipLevels: gather(\.clipLevelFeatures, dim: 1), dinoLevels: gather(\.dinoLevelFeatures, dim: 1),
                            clipImage: gather(\.clipImage, dim: 0), dinoCLS: gather(\.dinoCLS, dim: 0))
    }
}

/// A head file or a shard: the file, if its metadata's `format` is `format`, and how to fail
/// about it.
func openFile(_ path: String, format: String, kind: String) throws(USEError) -> (StateDict, (String) -> USEError) {
    let file: StateDict
    do { file = try StateDict.load(path) } catch { throw .unreadable(path: path, reason: "\(error)") }
    let fail = { (reason: String) -> USEError in .unusable(path: path, reason: "not \(kind) (\(format)): \(reason)") }
    guard let found = file.metadata["format"] else { throw fail("no 'format' in its metadata") }
    guard found == format else { throw fail("its format is '\(found)'") }
    return (file, fail)
}

/// The block numbers a head file or a shard names under `key` in its metadata (a JSON array).
func levels(_ file: StateDict, _ key: String, _ fail: (String) -> USEError) throws(USEError) -> [Int] {
    guard let text = file.metadata[key], let data = text.data(using: .utf8),
          let array = try? JSONSerialization.jsonObject(with: data) as? [Int], !array.isEmpty, array.allSatisfy({ $0 >= 0 }) else {
        throw fail("'\(key)' must be a JSON array of block numbers, not \(file.metadata[key].map { "'\($0)'" } ?? "missing")")
    }
    return array
}

/// Segments' head inputs gathered for one shard, written by `write(to:)`.
public struct FeatureShardBuilder: Sendable {
    public let shape: UseHeadShape
    public let metadata: [String: String]
    private var use: [Float] = [], clipLevels: [[Float]], dinoLevels: [[Float]], clipImage: [Float] = [], dinoCLS: [Float] = []
    /// Each segment's descriptions, as rows of `texts`.
    private var descriptions: [[Int]] = []
    public private(set) var texts: [String] = []
    private var textRows: [String: Int] = [:]

    public init(shape: UseHeadShape, clipLevels: [Int], dinoLevels: [Int], clipDigest: String?, dinoDigest: String?) {
        self.shape = shape
        var metadata = ["format": FeatureShard.format, "clip_levels": "[" + clipLevels.map(String.init).joined(separator: ", ") + "]",
                        "dino_levels": "[" + dinoLevels.map(String.init).joined(separator: ", ") + "]"]
        metadata["clip_digest"] = clipDigest
        metadata["dino_digest"] = dinoDigest
        self.metadata = metadata
        self.clipLevels = Array(repeating: [], count: shape.clipLevels)
        self.dinoLevels = Array(repeating: [], count: shape.dinoLevels)
    }

    public var count: Int { descriptions.count }

    /// Adds the segments of `input` (in order) with their descriptions.
    public mutating func append(_ input: UseHeadInput, descriptions segmentTexts: [[String]]) throws(USEError) {
        try input.validate(shape)
        guard segmentTexts.count == input.count else { throw .mismatch("\(segmentTexts.count) descriptions for \(input.count) segments") }
        use += input.use.toArray()
        for i in 0..<shape.clipLevels { clipLevels[i] += input.clipLevels.selected(0, i).toArray() }
        for i in 0..<shape.dinoLevels { dinoLevels[i] += input.dinoLevels.selected(0, i).toArray() }
        clipImage += input.clipImage.toArray()
        dinoCLS += input.dinoCLS.toArray()
        for list in segmentTexts {
            descriptions.append(list.map { text in
                if let row = textRows[text] { return row }
                texts.append(text)
                textRows[text] = texts.count - 1
                return texts.count - 1
            })
        }
    }

    /// Writes the shard with `textEmbeddings` `[texts.count, E]` (unit rows), atomically.
    public func write(to path: String, textEmbeddings: Tensor) throws(USEError) {
        let n = count, width = descriptions.map(\.count).max() ?? 1
        guard textEmbeddings.shape == [texts.count, shape.embed] else {
            throw .mismatch("\(textEmbeddings.shape) text embeddings for \(texts.count) texts of \(shape.embed) values")
        }
        let targets = descriptions.flatMap { $0.map(Int64.init) + [Int64](repeating: -1, count: width - $0.count) }
        var tensors: [(name: String, value: SafeTensorsValue)] = [
            ("use", .float32(Tensor(shape: [n, shape.embed], values: use))),
            ("clip.levels", .float32(Tensor(shape: [shape.clipLevels, n, shape.clipWidth], values: clipLevels.flatMap { $0 }))),
            ("dino.levels", .float32(Tensor(shape: [shape.dinoLevels, n, shape.dinoWidth], values: dinoLevels.flatMap { $0 }))),
            ("clip.image", .float32(Tensor(shape: [n, shape.embed], values: clipImage))),
            ("dino.cls", .float32(Tensor(shape: [n, shape.dinoWidth], values: dinoCLS))),
            ("text.embeds", .float32(textEmbeddings.contiguous())),
            ("target", .int64(shape: [n], values: descriptions.map { Int64($0[0]) })),
        ]
        if width > 1 { tensors.append(("targets", .int64(shape: [n, width], values: targets))) }
        do { try writeSafeTensors(tensors, metadata: metadata, to: path) } catch { throw .unreadable(path: path, reason: "cannot write: \(error)") }
    }
}
