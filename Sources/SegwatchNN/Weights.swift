import SegwatchCheckpoint
import SegwatchTensor

/// Reads a model's tensors out of a state dict strictly: each read names the full key and the
/// shape the module expects, and the reader remembers every key read, so that loading can
/// refuse a file that holds tensors no module asked for.
public final class WeightReader {
    public let stateDict: StateDict
    public private(set) var used: Set<String> = []

    public init(_ stateDict: StateDict) {
        self.stateDict = stateDict
    }

    /// The float32 tensor `key`, which must have `shape`.
    public func tensor(_ key: String, _ shape: [Int]) throws -> Tensor {
        used.insert(key)
        return try stateDict.tensor(key, shape: shape)
    }

    /// The shape of `key`, or nil when the file has no such tensor.
    public func shape(_ key: String) -> [Int]? { stateDict.entries[key]?.shape }

    /// Marks tensors the model reads nothing from (TinyViT's unused classifier, BatchNorm's
    /// `num_batches_tracked`) as accounted for.
    public func ignore(_ key: String) {
        if stateDict.entries[key] != nil { used.insert(key) }
    }

    /// Throws when the file holds tensors that no module read.
    public func checkAllUsed() throws {
        try stateDict.checkAllUsed(used)
    }
}

/// A module's view of the checkpoint: the reader, the backend the weights go to, and the
/// key prefix of the module (`image_encoder.blocks.3.attn.`).
public struct Weights<B: Backend> {
    public let reader: WeightReader
    public let backend: B
    public let prefix: String

    public init(reader: WeightReader, backend: B, prefix: String = "") {
        self.reader = reader
        self.backend = backend
        self.prefix = prefix
    }

    /// The tensor `prefix + name` uploaded to the backend, contiguous.
    public func callAsFunction(_ name: String, _ shape: [Int]) throws -> B.Value {
        backend.upload(try host(name, shape))
    }

    /// The tensor `prefix + name` on the host, for work done once at load (BatchNorm folding).
    public func host(_ name: String, _ shape: [Int]) throws -> Tensor {
        try reader.tensor(prefix + name, shape).contiguous()
    }

    public func shape(_ name: String) -> [Int]? { reader.shape(prefix + name) }

    public func ignore(_ name: String) { reader.ignore(prefix + name) }

    /// The weights of the child module `name`; "" is this module (a layout whose module sits
    /// at the root in one file and under a name in another).
    public func scope(_ name: String) -> Weights {
        name.isEmpty ? self : Weights(reader: reader, backend: backend, prefix: prefix + name + ".")
    }

    /// How many children `name.0`, `name.1`, ... the checkpoint has.
    public func count(_ name: String) -> Int {
        let start = prefix + name + "."
        var indices = Set<Int>()
        for key in reader.stateDict.names where key.hasPrefix(start) {
            if let index = Int(key.dropFirst(start.count).prefix { $0 != "." }) { indices.insert(index) }
        }
        var count = 0
        while indices.contains(count) { count += 1 }
        return count
    }
}
