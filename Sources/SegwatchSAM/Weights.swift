import SegwatchCheckpoint
import SegwatchTensor

/// Reads a model's tensors out of a state dict strictly: each read names the full key and the
/// shape the module expects, and the reader remembers every key read, so that loading can
/// refuse a file that holds tensors no module asked for.
final class WeightReader {
    let stateDict: StateDict
    private(set) var used: Set<String> = []

    init(_ stateDict: StateDict) {
        self.stateDict = stateDict
    }

    /// The float32 tensor `key`, which must have `shape`.
    func tensor(_ key: String, _ shape: [Int]) throws -> Tensor {
        used.insert(key)
        return try stateDict.tensor(key, shape: shape)
    }

    /// The shape of `key`, or nil when the file has no such tensor.
    func shape(_ key: String) -> [Int]? { stateDict.entries[key]?.shape }

    /// Marks tensors the model reads nothing from (TinyViT's unused classifier, BatchNorm's
    /// `num_batches_tracked`) as accounted for.
    func ignore(_ key: String) {
        if stateDict.entries[key] != nil { used.insert(key) }
    }

    /// Throws when the file holds tensors that no module read.
    func checkAllUsed() throws {
        try stateDict.checkAllUsed(used)
    }
}

/// A module's view of the checkpoint: the reader, the backend the weights go to, and the
/// key prefix of the module (`image_encoder.blocks.3.attn.`).
struct Weights<B: Backend> {
    let reader: WeightReader
    let backend: B
    let prefix: String

    /// The tensor `prefix + name` uploaded to the backend, contiguous.
    func callAsFunction(_ name: String, _ shape: [Int]) throws -> B.Value {
        backend.upload(try host(name, shape))
    }

    /// The tensor `prefix + name` on the host, for work done once at load (BatchNorm folding).
    func host(_ name: String, _ shape: [Int]) throws -> Tensor {
        try reader.tensor(prefix + name, shape).contiguous()
    }

    func shape(_ name: String) -> [Int]? { reader.shape(prefix + name) }

    func ignore(_ name: String) { reader.ignore(prefix + name) }

    /// The weights of the child module `name`.
    func scope(_ name: String) -> Weights {
        Weights(reader: reader, backend: backend, prefix: prefix + name + ".")
    }

    /// How many children `name.0`, `name.1`, ... the checkpoint has.
    func count(_ name: String) -> Int {
        let start = prefix + name + "."
        var indices = Set<Int>()
        for key in reader.stateDict.names where key.hasPrefix(start) {
            if let index = Int(key.dropFirst(start.count).prefix { $0 != "." }) { indices.insert(index) }
        }
        var count = 0
        while indices.contains(count) { count += 1 }
        return count
    }

    /// The shape of `name`, or a `SamError` that says which tensor the model needs to size itself.
    func requireShape(_ name: String, rank: Int) throws -> [Int] {
        guard let shape = shape(name) else {
            throw SamError.unrecognized(file: reader.stateDict.path, reason: "tensor '\(prefix + name)' is missing")
        }
        guard shape.count == rank else {
            throw SamError.unrecognized(file: reader.stateDict.path, reason: "tensor '\(prefix + name)' has shape \(shape); expected \(rank) dimensions")
        }
        return shape
    }
}
