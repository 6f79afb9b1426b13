import Foundation
import SegwatchCheckpoint
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// Inputs and expected outputs computed by torch in float64 (`make_op_references.py`).
enum References {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("op_references.safetensors").path
    // Loaded once; a failure here names the file in every test that needs it.
    static let tensors = Result { try StateDict.load(file) }

    static func tensor(_ key: String) throws -> Tensor { try tensors.get().tensor(key) }
}

/// `x` rounded to bfloat16 as the bfloat16 kernels round it: to nearest, ties to even, a
/// subnormal to zero.
func bfloat16(_ x: Float) -> Float {
    let u = x.bitPattern
    if u & 0x7F80_0000 == 0 { return Float(bitPattern: u & 0x8000_0000) }
    return Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000)
}

/// Expects `actual` to match reference `key` within float32 noise: `atol` scaled by the
/// largest expected magnitude.
func expectMatches(_ actual: Tensor, _ key: String, atol: Float = 2e-6, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try References.tensor(key)
    let scale = max(1, expected.toArray().map(abs).max() ?? 0)
    let comparison = compare(actual, expected, atol: atol * scale, name: key)
    #expect(comparison.passed, "\(comparison)", sourceLocation: sourceLocation)
}
