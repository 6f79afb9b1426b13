// A head file: safetensors with the head's parameters under their names (`clip.norm.0.weight`,
// ..., `proj.weight`, `logit_scale`) and this metadata:
//
//     format       segwatch-use-head/1
//     clip_levels  JSON array of CLIP's block numbers (1-based, as in hidden_states)
//     dino_levels  the same for DINOv2's layers
//     clip_digest  the CLIP checkpoint it was trained with (CLIPFiles.digest, hexadecimal)
//     dino_digest  the DINOv2 checkpoint (DINOv2Files.digest)
import Foundation
import SegwatchCheckpoint
import SegwatchTensor

extension UseHead {
    public static let format = "segwatch-use-head/1"

    /// Reads a head file, strictly: every parameter with the shapes the others imply, nothing
    /// else, finite values, the format and the levels in the metadata.
    public init(contentsOf path: String) throws(USEError) {
        let (file, fail) = try openFile(path, format: Self.format, kind: "a USE head")
        let clipLevels = try levels(file, "clip_levels", fail), dinoLevels = try levels(file, "dino_levels", fail)
        func width(_ key: String) throws(USEError) -> Int {
            guard let shape = file.entries[key]?.shape, shape.count == 1, shape[0] > 0 else {
                throw fail("\(key) must be a vector; it is \(file.entries[key].map { "\($0.shape)" } ?? "missing")")
            }
            return shape[0]
        }
        let shape = UseHeadShape(embed: try width("proj.bias"), clipWidth: try width("clip.norm.0.weight"),
                                 dinoWidth: try width("dino.norm.0.weight"), clipLevels: clipLevels.count, dinoLevels: dinoLevels.count)
        var parameters: [String: Tensor] = [:]
        for (name, want) in shape.parameters {
            guard let entry = file.entries[name] else { throw fail("no \(name) (\(want)) for a head of \(shape)") }
            guard entry.shape == want else { throw fail("\(name) is \(entry.shape); a head of \(shape) has it \(want)") }
            let tensor: Tensor
            do { tensor = try file.tensor(name, shape: want).contiguous().copied() } catch { throw fail("\(name): \(error)") }
            guard tensor.toArray().allSatisfy(\.isFinite) else { throw fail("\(name) holds a value that is not finite") }
            parameters[name] = tensor
        }
        if let extra = file.names.first(where: { parameters[$0] == nil }) { throw fail("unexpected tensor '\(extra)'") }
        try self.init(shape: shape, parameters: parameters, clipLevels: clipLevels, dinoLevels: dinoLevels,
                      clipDigest: file.metadata["clip_digest"], dinoDigest: file.metadata["dino_digest"])
    }

    /// Writes the head file, atomically.
    public func write(to path: String) throws(USEError) {
        func json(_ levels: [Int]) -> String { "[" + levels.map(String.init).joined(separator: ", ") + "]" }
        var metadata = ["format": Self.format, "clip_levels": json(clipLevels), "dino_levels": json(dinoLevels)]
        metadata["clip_digest"] = clipDigest
        metadata["dino_digest"] = dinoDigest
        do {
            try writeSafeTensors(shape.parameters.map { ($0.name, .float32(parameters[$0.name]!)) }, metadata: metadata, to: path)
        } catch {
            throw .unreadable(path: path, reason: "cannot write: \(error)")
        }
    }

    /// Refuses encoders other than the head's: widths, then digests. A head without digests
    /// (test data) is accepted; the returned warning says so.
    public func check(clipWidth: Int, embed: Int, clipDigest: String?, dinoWidth: Int, dinoDigest: String?) throws(USEError) -> String? {
        guard clipWidth == shape.clipWidth, embed == shape.embed, dinoWidth == shape.dinoWidth else {
            throw .mismatch("the head (\(shape)) does not fit these encoders: CLIP width \(clipWidth), joint space \(embed), DINOv2 width \(dinoWidth)")
        }
        return try check(clipDigest: clipDigest, dinoDigest: dinoDigest)
    }

    /// Refuses checkpoints of other digests than the head's (features computed with other
    /// encoders); the returned warning says when the head names none.
    public func check(clipDigest: String?, dinoDigest: String?) throws(USEError) -> String? {
        var missing: [String] = []
        for (name, mine, theirs) in [("CLIP", self.clipDigest, clipDigest), ("DINOv2", self.dinoDigest, dinoDigest)] {
            guard let mine else { missing.append(name); continue }
            if let theirs, theirs != mine {
                throw .mismatch("the head was trained with the \(name) checkpoint of digest \(mine); this one's is \(theirs)")
            }
        }
        return missing.isEmpty ? nil : "the head names no \(missing.joined(separator: " or ")) checkpoint (test data?): its encoders are not checked"
    }
}
