import ArgumentParser
import SegwatchPipeline

/// How a video is segmented and embedded frame to frame, as flags: `run`'s, and `bench
/// pipeline`'s, which times the same work.
struct KeyframeOptions: ParsableArguments {
    @Option(help: "A keyframe (the full automatic mask generator) every this many analyzed frames; between them the tracks are re-prompted.")
    var keyframeEvery = 10

    @Option(help: "Points per side of the sparse grid that looks for new objects between keyframes (0: none).")
    var discoveryGrid = 8

    @Option(help: "Decode a keyframe's point grid over this many analyzed frames, a slice each beside the tracks' prompts, so that no frame waits for a whole keyframe (a live source's latency); 1: whole keyframes, as SAM's automatic mask generator.")
    var keyframeSlices = 1

    @Flag(help: "Let a keyframe prompt the live tracks first and decode only the grid points their masks leave uncovered: faster, but the parts of tracked objects the generator would have found separately are not looked for.")
    var keyframeTrackPrompts = false

    @Flag(help: "Embed every segment on every analyzed frame (CLIP's dense features each frame). By default a tracked segment keeps its last embedding and scores while its mask stays much as it was, its label's vote is settled (the track was embedded on 3 frames, and frames like the last keep its label) and it was embedded fewer than 10 frames ago; its events say when it was scored (scored_pts).")
    var embedEveryFrame = false

    func apply(to options: inout AnalyzerOptions) {
        options.keyframeEvery = keyframeEvery
        options.discoveryGrid = discoveryGrid
        options.keyframeSlices = keyframeSlices
        options.keyframeTrackPrompts = keyframeTrackPrompts
        options.embedEveryFrame = embedEveryFrame
    }
}
