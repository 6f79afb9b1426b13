import Foundation
import SegwatchCheckpoint
import SegwatchTensor

/// The outcome of comparing a tensor with expected values under numpy `allclose` semantics:
/// pass iff `|actual - expected| <= atol + rtol * |expected|` for every element.
public struct Comparison: CustomStringConvertible, Sendable {
    public let name: String
    public let shape: [Int]
    public let atol: Float
    public let rtol: Float
    /// Elements outside the tolerance (a shape mismatch or a NaN counts as all).
    public let failures: Int
    public let maxAbsError: Float
    /// Where the largest error (by how far it exceeds its tolerance) occurs.
    public let worst: [Int]
    public let sample: [(index: [Int], actual: Float, expected: Float)]
    public let shapeMismatch: String?

    public var passed: Bool { failures == 0 && shapeMismatch == nil }

    public var description: String {
        if let shapeMismatch { return "\(name): \(shapeMismatch)" }
        let head = "\(name) \(shape): \(passed ? "pass" : "FAIL, \(failures) of \(shape.reduce(1, *)) elements outside"),"
            + " max abs error \(maxAbsError) at \(worst) (atol \(atol), rtol \(rtol))"
        let values = sample.map { "  \($0.index): actual \($0.actual), expected \($0.expected)" }
        return ([head] + values).joined(separator: "\n")
    }
}

/// Compares `actual` with `expected` element by element.
public func compare(_ actual: Tensor, _ expected: Tensor, atol: Float, rtol: Float = 0, name: String = "tensor") -> Comparison {
    guard actual.shape == expected.shape else {
        return Comparison(name: name, shape: actual.shape, atol: atol, rtol: rtol, failures: actual.count, maxAbsError: .infinity,
                          worst: [], sample: [], shapeMismatch: "shape \(actual.shape), expected \(expected.shape)")
    }
    let a = actual.toArray(), e = expected.toArray()
    var failures = 0, maxError: Float = 0, worst = 0, worstExcess = -Float.infinity
    for i in a.indices {
        let error = abs(a[i] - e[i]), allowed = atol + rtol * abs(e[i])
        // A NaN on either side fails: `error <= allowed` is false.
        if !(error <= allowed) { failures += 1 }
        let excess = error.isNaN ? .infinity : error - allowed
        if excess > worstExcess { worstExcess = excess; worst = i }
        if error.isNaN || error > maxError { maxError = error.isNaN ? .nan : error }
    }
    func index(_ flat: Int) -> [Int] {
        var rest = flat
        return Tensor.contiguousStrides(actual.shape).map { stride in
            defer { rest %= max(stride, 1) }
            return rest / max(stride, 1)
        }
    }
    let shown = Array(Set([0, worst, a.count - 1].filter { $0 >= 0 && $0 < a.count })).sorted()
    return Comparison(name: name, shape: actual.shape, atol: atol, rtol: rtol, failures: failures, maxAbsError: maxError,
                      worst: a.isEmpty ? [] : index(worst),
                      sample: shown.map { (index($0), a[$0], e[$0]) }, shapeMismatch: nil)
}

/// A parity fixture folder: `expected.safetensors` with each case's tensors and `expected.json`
/// with a tolerance for every output (`../shared/fixtures/README.md`).
public struct ParityFixture: Sendable {
    public let directory: URL
    public let tensors: StateDict
    /// `expected.json` tolerances by tensor key: every object in it with `key` and `atol`, and
    /// every member `"KEY": {"atol": ...}` of an object (the DINOv2 and USE fixtures' form).
    public let tolerances: [String: (atol: Float, rtol: Float)]

    public enum Failure: Error, CustomStringConvertible {
        case noTolerance(key: String, file: String)
        case badJSON(String)

        public var description: String {
            switch self {
            case let .noTolerance(key, file): return "\(file) has no tolerance (key with atol) for \(key)"
            case let .badJSON(file): return "\(file) is not a JSON object"
            }
        }
    }

    /// Opens `fixtures/<name>` (or any folder with the two files, or files of other names).
    public init(_ name: String, tensors tensorFile: String = "expected.safetensors", json jsonName: String = "expected.json") throws {
        directory = name.hasPrefix("/") ? URL(fileURLWithPath: name) : Fixtures.root.appendingPathComponent(name)
        tensors = try StateDict.load(directory.appendingPathComponent(tensorFile).path)
        let jsonFile = directory.appendingPathComponent(jsonName)
        guard let json = try JSONSerialization.jsonObject(with: Data(contentsOf: jsonFile)) as? [String: Any] else {
            throw Failure.badJSON(jsonFile.path)
        }
        var found: [String: (atol: Float, rtol: Float)] = [:]
        func walk(_ value: Any) {
            if let object = value as? [String: Any] {
                if let key = object["key"] as? String, let atol = object["atol"] as? Double {
                    found[key] = (Float(atol), Float(object["rtol"] as? Double ?? 0))
                }
                for (key, member) in object {
                    if let member = member as? [String: Any], member["key"] == nil, let atol = member["atol"] as? Double {
                        found[key] = (Float(atol), Float(member["rtol"] as? Double ?? 0))
                    }
                }
                object.values.forEach(walk)
            } else if let array = value as? [Any] {
                array.forEach(walk)
            }
        }
        walk(json)
        tolerances = found
    }

    /// The stored tensor `key` (an input or an expected output).
    public func tensor(_ key: String) throws -> Tensor { try tensors.tensor(key) }

    /// Compares `actual` with the expected output `key` under its stored tolerance.
    public func check(_ actual: Tensor, key: String) throws -> Comparison {
        guard let tolerance = tolerances[key] else {
            throw Failure.noTolerance(key: key, file: directory.path)
        }
        return compare(actual, try tensor(key), atol: tolerance.atol, rtol: tolerance.rtol, name: key)
    }
}
