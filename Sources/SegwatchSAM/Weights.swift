import SegwatchNN
import SegwatchTensor

extension Weights {
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
