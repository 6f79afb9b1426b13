// Training the head on features shards: batches of segments, one description each, the
// classes of a step the texts its batch refers to; the fixture's loss and AdamW (decay on
// proj.weight only); warmup then a constant or cosine learning rate; validation top-1 and top-5.
import Foundation
import SegwatchCheckpoint
import SegwatchTensor

public struct TrainingOptions: Sendable {
    public enum Schedule: String, Sendable, CaseIterable { case cosine, constant }

    /// The run's length: `steps`, or else `epochs` passes over the set (1 when neither).
    public var steps: Int?
    public var epochs: Int?
    public var batchSize = 256
    public var learningRate = 1e-3
    public var weightDecay = 0.05
    /// Steps of linear warmup from lr / warmup up to lr.
    public var warmup = 0
    public var schedule = Schedule.cosine
    public var seed: UInt64 = 0
    /// Off: batches in the set's order, each segment with its first description (`target`).
    public var shuffle = true
    /// The gradients' global L2 norm is clipped to this, when given.
    public var clipGradient: Double?

    public init() {}

    public func validate() throws(USEError) {
        func check(_ ok: Bool, _ message: String) throws(USEError) { if !ok { throw .mismatch(message) } }
        try check(steps.map { $0 > 0 } ?? true, "--steps must be positive")
        try check(epochs.map { $0 > 0 } ?? true, "--epochs must be positive")
        try check(batchSize > 0, "--batch-size must be positive, not \(batchSize)")
        try check(learningRate > 0 && learningRate.isFinite, "--lr must be a positive number, not \(learningRate)")
        try check(weightDecay >= 0 && weightDecay.isFinite, "--weight-decay must be 0 or more, not \(weightDecay)")
        try check(warmup >= 0, "--warmup must be 0 or more, not \(warmup)")
        try check(clipGradient.map { $0 > 0 } ?? true, "--clip-grad must be positive")
    }

    /// The learning rate of step `step` (0-based) of `total`.
    public func learningRate(at step: Int, of total: Int) -> Double {
        if step < warmup { return learningRate * Double(step + 1) / Double(warmup) }
        switch schedule {
        case .constant: return learningRate
        case .cosine:
            let progress = Double(step - warmup) / Double(max(1, total - warmup))
            return learningRate * 0.5 * (1 + Foundation.cos(Double.pi * progress))
        }
    }
}

/// What a step or a validation reports.
public enum TrainingEvent: Sendable {
    /// A step's loss (before its update) and learning rate; `step` counts from 1.
    case step(step: Int, epoch: Int, loss: Float, learningRate: Double)
    /// Top-1 and top-5 on the validation set after `step` steps (0: before training).
    case validation(step: Int, epoch: Int, top1: Double, top5: Double, segments: Int)
}

/// A head, its optimizer and where the run stands: resumable from a checkpoint.
public struct Trainer: Sendable {
    public var head: UseHead
    public var optimizer: AdamW
    public let options: TrainingOptions

    public init(head: UseHead, options: TrainingOptions) {
        self.head = head
        self.options = options
        optimizer = AdamW(learningRate: options.learningRate, weightDecay: options.weightDecay, decayed: ["proj.weight"])
    }

    /// Steps per pass over a set of `count` segments (the last batch may be short).
    public func stepsPerEpoch(_ count: Int) -> Int { (count + options.batchSize - 1) / options.batchSize }

    public func totalSteps(_ count: Int) -> Int { options.steps ?? (options.epochs ?? 1) * stepsPerEpoch(count) }

    /// The segments of step `step` (0-based): the epoch's order (a permutation seeded by the
    /// seed and the epoch, or the set's order), cut in batches.
    func segments(step: Int, count: Int) -> [Int] {
        let perEpoch = stepsPerEpoch(count), epoch = step / perEpoch, position = step % perEpoch
        var order = Array(0..<count)
        if options.shuffle {
            var generator = SplitMix64(seed: options.seed &+ 0x9E37_79B9 &* UInt64(epoch + 1))
            order.shuffle(using: &generator)
        }
        return Array(order[(position * options.batchSize)..<min(count, (position + 1) * options.batchSize)])
    }

    /// Runs from `optimizer.step` to the end, reporting each step and each validation (every
    /// epoch and at the end; before the first step too when starting). `checkpoint` is called
    /// at the end of every epoch and of the run.
    public mutating func run(_ set: FeatureSet, validation: FeatureSet?, report: (TrainingEvent) -> Void,
                             checkpoint: (Trainer) throws -> Void) throws {
        try options.validate()
        guard set.shape == head.shape else { throw USEError.mismatch("the features (\(set.shape)) do not fit the head (\(head.shape))") }
        let total = totalSteps(set.count), perEpoch = stepsPerEpoch(set.count)
        if optimizer.step == 0, let validation { report(try validate(validation, step: 0, epoch: 0)) }
        while optimizer.step < total {
            let step = optimizer.step, epoch = step / perEpoch
            let segments = segments(step: step, count: set.count)
            // One description per segment; the step's classes are the rows they name, ascending.
            var generator = SplitMix64(seed: options.seed ^ (0xD1B5_4A32_D192_ED03 &* UInt64(step + 1)))
            let chosen = segments.map { n -> Int in
                let rows = set.descriptions(n)
                return options.shuffle ? rows[Int(generator.next() % UInt64(rows.count))] : rows[0]
            }
            let classes = Array(Set(chosen)).sorted()
            let position = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            let text = concat(classes.map { set.text.sliced(0, $0..<($0 + 1)) }, dim: 0)
            let result = try head.loss(set.batch(segments), text: text, target: chosen.map { position[$0]! })
            var gradients = result.gradients
            if let limit = options.clipGradient {
                let norm = gradients.values.reduce(0.0) { $0 + $1.toArray().reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
                if norm > limit {
                    let factor = Float(limit / (norm + 1e-6))
                    gradients = gradients.mapValues { g in Tensor(shape: g.shape, values: g.toArray().map { $0 * factor }) }
                }
            }
            let rate = options.learningRate(at: step, of: total)
            optimizer.learningRate = rate
            optimizer.update(&head, gradients: gradients)
            report(.step(step: step + 1, epoch: epoch + 1, loss: result.loss, learningRate: rate))
            let endOfEpoch = (step + 1) % perEpoch == 0, end = step + 1 == total
            if endOfEpoch || end {
                if let validation { report(try validate(validation, step: step + 1, epoch: epoch + 1)) }
                try checkpoint(self)
            }
        }
    }

    /// Top-1 and top-5: a segment counts when one of its descriptions is among the texts
    /// closest to its embedding, over every text of `set`.
    public func validate(_ set: FeatureSet, step: Int, epoch: Int) throws -> TrainingEvent {
        guard set.shape == head.shape else { throw USEError.mismatch("the validation features (\(set.shape)) do not fit the head (\(head.shape))") }
        var hits1 = 0, hits5 = 0
        let texts = set.text.shape[0]
        for start in stride(from: 0, to: set.count, by: options.batchSize) {
            let segments = Array(start..<min(set.count, start + options.batchSize))
            let cosines = linear(try head(set.batch(segments)), weight: set.text, bias: nil).toArray()
            for (i, n) in segments.enumerated() {
                let row = cosines[(i * texts)..<((i + 1) * texts)]
                let ranked = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.map { $0 - i * texts }
                let wanted = Set(set.descriptions(n))
                if wanted.contains(ranked[0]) { hits1 += 1 }
                if ranked.prefix(5).contains(where: wanted.contains) { hits5 += 1 }
            }
        }
        let count = Double(max(set.count, 1))
        return .validation(step: step, epoch: epoch, top1: Double(hits1) / count, top5: Double(hits5) / count, segments: set.count)
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a small seeded generator, so that a run's shuffles
/// and description choices are the same on every machine and after a resume.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Trainer {
    static let stateFormat = "segwatch-use-train-state/1"

    /// Writes the optimizer's state beside a head file: its step and moment estimates.
    public func writeState(to path: String) throws(USEError) {
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for (name, shape) in head.shape.parameters {
            guard let m = optimizer.expAvg[name], let v = optimizer.expAvgSq[name] else { continue }
            tensors.append(("exp_avg.\(name)", .float32(Tensor(shape: shape, values: m))))
            tensors.append(("exp_avg_sq.\(name)", .float32(Tensor(shape: shape, values: v))))
        }
        do {
            try writeSafeTensors(tensors, metadata: ["format": Self.stateFormat, "step": "\(optimizer.step)"], to: path)
        } catch {
            throw .unreadable(path: path, reason: "cannot write: \(error)")
        }
    }

    /// Reads a state written by `writeState` into this trainer's optimizer.
    public mutating func readState(from path: String) throws(USEError) {
        let file: StateDict
        do { file = try StateDict.load(path) } catch { throw .unreadable(path: path, reason: "\(error)") }
        guard file.metadata["format"] == Self.stateFormat, let step = file.metadata["step"].flatMap(Int.init), step >= 0 else {
            throw .unusable(path: path, reason: "not a training state (\(Self.stateFormat) with a step)")
        }
        var m: [String: [Float]] = [:], v: [String: [Float]] = [:]
        for (name, shape) in head.shape.parameters where file.entries["exp_avg.\(name)"] != nil {
            do {
                m[name] = try file.tensor("exp_avg.\(name)", shape: shape).contiguous().toArray()
                v[name] = try file.tensor("exp_avg_sq.\(name)", shape: shape).contiguous().toArray()
            } catch {
                throw .unusable(path: path, reason: "the state does not fit the head (\(head.shape)): \(error)")
            }
        }
        (optimizer.step, optimizer.expAvg, optimizer.expAvgSq) = (step, m, v)
    }
}
