import ArgumentParser
import SegwatchCheckpoint
import SegwatchPipeline

/// How a video is analyzed, as flags: the frames analyzed, how tracks live and the keyframes;
/// `run`'s, and `worker`'s for each file it claims.
struct AnalysisOptions: ParsableArguments {
    @Option(help: "Analyzed frames per second of video; 0 analyzes every frame.")
    var fps = 1.0

    @Option(help: "Stop after this many analyzed frames.")
    var maxFrames: Int?

    @Option(help: "Analyzed frames a track may go unseen before it ends.")
    var maxAge = 30

    @Option(help: "A re-prompted track's mask is kept when its predicted IoU is at least this.")
    var trackedMinIou = 0.5

    @Option(help: "A keyframe comes early when the re-prompted masks' mean predicted IoU falls below this.")
    var keyframeBelowIou = 0.7

    @OptionGroup var keyframes: KeyframeOptions

    @Option(name: .customLong("stuff"), help: "A background label (sky, road): reported per frame with its area, not tracked. Repeatable.")
    var stuff: [String] = []

    func validate() throws {
        guard fps >= 0, fps.isFinite, fps <= 1000 else { throw ValidationError("--fps must be in 0...1000, not \(fps)") }
        if let maxFrames, maxFrames < 1 { throw ValidationError("--max-frames must be positive, not \(maxFrames)") }
        do {
            try options(stuff: []).validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The analyzer's options for a vocabulary of these label `names`, which must hold every
    /// --stuff label.
    func analyzerOptions(names: [String]) throws -> AnalyzerOptions {
        if let unknown = stuff.first(where: { !names.contains($0) }) {
            throw ValidationError("--stuff \(quoted(unknown)) is not a label of the vocabulary")
        }
        return options(stuff: Set(stuff.compactMap { names.firstIndex(of: $0) }))
    }

    private func options(stuff: Set<Int>) -> AnalyzerOptions {
        var options = AnalyzerOptions()
        keyframes.apply(to: &options)
        options.trackedMinimumIoU = trackedMinIou
        options.keyframeBelowIoU = keyframeBelowIou
        options.tracker.maxAge = maxAge
        options.stuff = stuff
        return options
    }
}
