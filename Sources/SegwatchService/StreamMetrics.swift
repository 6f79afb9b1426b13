import Dispatch
import Metrics
import SegwatchPipeline

/// A stream's metrics, through swift-metrics: `serve` exports them in the Prometheus text
/// format (`/metrics`); elsewhere no backend is bootstrapped and they cost next to nothing.
/// Every series carries the label `camera`.
struct StreamMetrics: Sendable {
    let decoded: Counter
    let analyzed: Counter
    let dropped: Counter
    let reconnects: Counter
    let liveTracks: Gauge
    let analyzedFps: Gauge
    /// From a frame taken (decoded, or handed over by a live source's reader) to its events written.
    let eventLatency: Timer
    /// Each stage's time per analyzed frame (`AnalyzerTimings`), by `stage`.
    private let samEncoder, clipDense, decoder, masks, embed, classify, track: Timer
    /// Keyframes by `reason`.
    private let keyframes: [KeyframeReason: Counter]

    init(camera: String) {
        let labels = [("camera", camera)]
        decoded = Counter(label: "segwatch_frames_decoded_total", dimensions: labels)
        analyzed = Counter(label: "segwatch_frames_analyzed_total", dimensions: labels)
        dropped = Counter(label: "segwatch_frames_dropped_total", dimensions: labels)
        reconnects = Counter(label: "segwatch_reconnects_total", dimensions: labels)
        liveTracks = Gauge(label: "segwatch_live_tracks", dimensions: labels)
        analyzedFps = Gauge(label: "segwatch_analyzed_fps", dimensions: labels)
        eventLatency = Timer(label: "segwatch_event_latency_seconds", dimensions: labels)
        let stage = { (name: String) in Timer(label: "segwatch_stage_seconds", dimensions: labels + [("stage", name)]) }
        (samEncoder, clipDense, decoder, masks) = (stage("sam_encoder"), stage("clip_dense"), stage("decoder"), stage("masks"))
        (embed, classify, track) = (stage("embed"), stage("classify"), stage("track"))
        keyframes = Dictionary(uniqueKeysWithValues: KeyframeReason.allCases.map { reason in
            (reason, Counter(label: "segwatch_keyframes_total", dimensions: labels + [("reason", reason.rawValue)]))
        })
    }

    /// One analyzed frame: its stages' times, its keyframe reason, the tracks live after it.
    func record(_ analysis: FrameAnalysis, liveTracks count: Int) {
        analyzed.increment()
        let t = analysis.timings
        for (timer, milliseconds) in [(samEncoder, t.samEncoder), (clipDense, t.clipDense), (decoder, t.decoder), (masks, t.masks),
                                      (embed, t.embed), (classify, t.classify), (track, t.track)] {
            timer.recordNanoseconds(Int64(milliseconds * 1e6))
        }
        if let reason = analysis.keyframe { keyframes[reason]?.increment() }
        liveTracks.record(count)
    }
}
