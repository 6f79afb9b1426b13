import ArgumentParser
import CMalloc
import Foundation
import SegwatchTensor
import SegwatchUSE

/// `segwatch train`: the USE head trained on features shards.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the USE segment-embedding head on features shards (from 'segwatch features').",
        discussion: """
            Each step takes a batch of segments and one description per segment (a random one of \
            its descriptions, seeded, or its first with --no-shuffle); the step's classes are the \
            texts the batch's descriptions name. The loss is the cross-entropy over the scaled \
            cosines; the optimizer AdamW with weight decay on proj.weight only. Without --init the \
            head starts with proj at zero: step 0 is exactly the training-free embedding.

            --out is written at the end of every epoch and of the run, with the optimizer's state \
            beside it (OUT.state); --resume continues from them. --log writes one JSON line per \
            step (step, epoch, loss before the step, lr) and per validation (val_top1, val_top5), \
            the first line carrying the validation before training when --val is given.
            """)

    @Option(help: ArgumentHelp("A features shard, or a folder of them.", valueName: "shard|dir"))
    var features: String

    @Option(help: ArgumentHelp("The head file to write.", valueName: "head.safetensors"))
    var out: String

    @Option(name: .customLong("init"), help: ArgumentHelp("A head file to start from (every parameter, logit_scale included).", valueName: "head.safetensors"))
    var initial: String?

    @Flag(help: "Continue the run that --out and --out's .state hold.")
    var resume = false

    @Option(help: "Steps to take (instead of --epochs).")
    var steps: Int?

    @Option(help: "Passes over the features (default 1 when --steps is not given).")
    var epochs: Int?

    @Option(help: "Segments per step.")
    var batchSize = 256

    @Option(help: "Peak learning rate.")
    var lr = 1e-3

    @Option(help: "AdamW's decoupled weight decay, on proj.weight only.")
    var weightDecay = 0.05

    @Option(help: "Steps of linear warmup.")
    var warmup = 0

    @Option(help: "Learning rate after the warmup: cosine (to 0) or constant.")
    var schedule = TrainingOptions.Schedule.cosine

    @Option(help: "Seed of the shuffles and description choices.")
    var seed: UInt64 = 0

    @Flag(help: "Batches in the features' order, each segment with its first description.")
    var noShuffle = false

    @Option(name: .customLong("clip-grad"), help: "Clip the gradients' global norm to this.")
    var clipGradient: Double?

    @Option(help: ArgumentHelp("Validation features (shard or folder): top-1 and top-5 every epoch and at the end.", valueName: "shard|dir"))
    var val: String?

    @Option(help: ArgumentHelp("Write one JSON line per step and per validation to this file.", valueName: "log.jsonl"))
    var log: String?

    @Option(help: "logit_scale of a head started without --init (ln 100, CLIP's).")
    var logitScale: Float = Float(Foundation.log(100.0))

    @Option(help: "Threads for the products.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard steps == nil || epochs == nil else { throw ValidationError("give --steps or --epochs, not both") }
        guard !(resume && initial != nil) else { throw ValidationError("--resume continues --out; it goes without --init") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        guard out.hasSuffix(".safetensors") else { throw ValidationError("--out must end in .safetensors, not '\(out)'") }
    }

    func run() throws {
        keepTrainingBuffers()
        try runReporting {
            var options = TrainingOptions()
            (options.steps, options.epochs, options.batchSize) = (steps, epochs, batchSize)
            (options.learningRate, options.weightDecay, options.warmup, options.schedule) = (lr, weightDecay, warmup, schedule)
            (options.seed, options.shuffle, options.clipGradient) = (seed, !noShuffle, clipGradient)
            try options.validate()
            let set = try FeatureSet(features)
            let validation = try val.map { path throws(USEError) in try FeatureSet(path) }
            let first = set.shards[0]
            let head: UseHead
            if resume {
                head = try UseHead(contentsOf: out)
            } else if let initial {
                head = try UseHead(contentsOf: initial)
            } else {
                head = try UseHead.trainingFree(set.shape, clipLevels: first.clipLevels, dinoLevels: first.dinoLevels, logitScale: logitScale,
                                                clipDigest: first.clipDigest, dinoDigest: first.dinoDigest)
            }
            try checkEncoders(head, set, name: features)
            if let validation { try checkEncoders(head, validation, name: val!) }
            var trainer = Trainer(head: head, options: options)
            let state = out + ".state"
            if resume { try trainer.readState(from: state) }
            let logFile = try log.map { try LogLines(path: $0, append: resume) }
            let progress = Progress.onTerminal()
            let total = trainer.totalSteps(set.count)
            var last = ""
            var before: (top1: Double, top5: Double)?
            try engineRun {
                try trainer.run(set, validation: validation, report: { event in
                    switch event {
                    case let .step(step, epoch, loss, rate):
                        var line: [String: Any] = ["step": step, "epoch": epoch, "loss": Double(loss), "lr": rate]
                        if let start = before { (line["val_top1_before"], line["val_top5_before"]) = (start.top1, start.top5); before = nil }
                        logFile?.write(line)
                        last = String(format: "loss %.4f, lr %.2e", loss, rate)
                        progress.bar("train", done: step, total: total, unit: "steps", detail: last)
                    case let .validation(step, epoch, top1, top5, segments):
                        if step == 0 {
                            before = (top1, top5)
                        } else {
                            logFile?.write(["step": step, "epoch": epoch, "val_top1": top1, "val_top5": top5, "val_segments": segments])
                        }
                        progress.clear()
                        printError(String(format: "validation after %d steps: top-1 %.1f%%, top-5 %.1f%% of %d segments", step, 100 * top1, 100 * top5, segments))
                    }
                }, checkpoint: { trainer in
                    try trainer.head.write(to: out)
                    try trainer.writeState(to: state)
                })
            }
            progress.clear()
            printError("trained \(trainer.optimizer.step) steps (\(last)); head written to \(out)")
        }
    }

    /// Runs `body` on an engine of `threads` threads (the head's products).
    private func engineRun(_ body: () throws -> Void) throws {
        try CPUEngine(threads: threads).run(body)
    }

    /// Features and head must come from the same encoders: shapes, levels and digests.
    private func checkEncoders(_ head: UseHead, _ set: FeatureSet, name: String) throws {
        let shard = set.shards[0]
        guard set.shape == head.shape, shard.clipLevels == head.clipLevels, shard.dinoLevels == head.dinoLevels else {
            throw USEError.mismatch("\(name): its features (\(set.shape), CLIP levels \(shard.clipLevels), DINOv2 levels \(shard.dinoLevels)) do not fit the head (\(head.shape), levels \(head.clipLevels) and \(head.dinoLevels))")
        }
        if let warning = try head.check(clipDigest: shard.clipDigest, dinoDigest: shard.dinoDigest) {
            printError("warning: \(warning)")
        }
    }
}

/// A training step allocates the same buffers (megabytes each) every step: above the mmap
/// threshold `main` sets for long runs, each would be mapped and faulted in anew every step
/// (a fifth of a step's time). Training is a bounded job: its freed buffers stay in the heap.
func keepTrainingBuffers() {
    _ = mallopt(M_MMAP_THRESHOLD, 256 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 512 << 20)
}

/// A JSON lines file written line by line (flushed: a run stopped midway keeps its lines).
final class LogLines {
    private let handle: FileHandle

    init(path: String, append: Bool) throws {
        if !append || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw CommandError("--log \(path): cannot create the file") }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw CommandError("--log \(path): cannot open the file for writing") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func write(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }
}

extension TrainingOptions.Schedule: ExpressibleByArgument {}
