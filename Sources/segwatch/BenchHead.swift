import ArgumentParser
import Dispatch
import Foundation
import CMalloc
import SegwatchService
import SegwatchSynthetic
import SegwatchTensor
import SegwatchUSE

/// `segwatch bench head`: training steps of the USE head, timed as
/// Tests/SegwatchUSETests/bench_head_training.py times PyTorch's.
struct BenchHead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "head",
        abstract: "Time training steps of the USE head on synthetic ViT-B features.",
        discussion: """
            One step: the head's forward pass, loss and gradients on a batch, and an AdamW update. \
            Synthetic features of ViT-B sizes (E 512, CLIP 768 wide, DINOv2 768 wide, 2 levels \
            each), --batch segments, 256 texts. Keys: head_step_ms (median), head_steps_per_s.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions

    @Option(help: "Segments per step.")
    var batch = 256

    func run() throws {
        keepTrainingBuffers()
        let (e, dc, dd, texts) = (512, 768, 768, 256)
        let shape = UseHeadShape(embed: e, clipWidth: dc, dinoWidth: dd, clipLevels: 2, dinoLevels: 2)
        var head = try UseHead.trainingFree(shape, clipLevels: [6, 12], dinoLevels: [6, 12], logitScale: Float(Foundation.log(100.0)))
        var parameters = head.parameters
        parameters["proj.weight"] = benchTensor([e, shape.features], seed: 3)
        head = try UseHead(shape: shape, parameters: parameters, clipLevels: [6, 12], dinoLevels: [6, 12])
        let input = UseHeadInput(use: benchTensor([batch, e], seed: 4), clipLevels: benchTensor([2, batch, dc], seed: 5),
                                 dinoLevels: benchTensor([2, batch, dd], seed: 6), clipImage: benchTensor([batch, e], seed: 7),
                                 dinoCLS: benchTensor([batch, dd], seed: 8))
        var text = benchTensor([texts, e], seed: 9).toArray()
        for row in 0..<texts {
            let norm = text[(row * e)..<((row + 1) * e)].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for j in 0..<e { text[row * e + j] /= norm }
        }
        let textTensor = Tensor(shape: [texts, e], values: text)
        let target = (0..<batch).map { ($0 * 7919) % texts }
        var optimizer = AdamW(learningRate: 1e-3, weightDecay: 0.05, decayed: ["proj.weight"])
        let samples = try CPUEngine(threads: tensor.threads).run {
            try options.samples {
                let result = try head.loss(input, text: textTensor, target: target)
                optimizer.update(&head, gradients: result.gradients)
            }
        }
        var result = BenchResult()
        result.samples["head_step_ms"] = samples
        result["head_step_ms"] = .number(median(samples))
        result["head_steps_per_s"] = .number(1000 / median(samples))
        result["batch"] = .number(Double(batch))
        result.describeMachine()
        result["threads"] = .number(Double(tensor.threads))
        result["runs"] = .number(Double(options.runs))
        print(options.json ? try result.json() : result.text())
    }
}
