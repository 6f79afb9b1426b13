import Foundation
import SegwatchMedia
import SegwatchPipeline

/// `--video-out` as a stage of its own: drawing and encoding every source frame runs on its
/// thread while the next frame is analyzed. Its queue is bounded, so a slow encoder slows
/// the run instead of filling memory; its first error stops it and is rethrown to the run.
public final class VideoSink: @unchecked Sendable {
    private enum Work: Sendable {
        case show(FrameAnalysis)
        case frame(VideoFrame)
    }

    private let work = BoundedChannel<Work>(capacity: 8)
    private let lock = NSLock()
    // Written by the stage thread, read by the run (under `lock`).
    private var failure: Error?
    private var busyMs = 0.0
    // Owned by the stage thread until `finish()` has joined it.
    private var video: AnnotatedVideo?
    // The analysis shown before the first frame creates the video.
    private var pending: FrameAnalysis?
    private var stage: StageThread!

    public init(path: String, fps: Double, font: String, names: [String]) {
        stage = StageThread(name: "video-out") { [self] in
            while let item = work.receive() {
                let start = DispatchTime.now()
                do {
                    switch item {
                    case let .show(analysis):
                        if let video { video.show(analysis, names: names) } else { pending = analysis }
                    case let .frame(frame):
                        if video == nil {
                            video = try AnnotatedVideo(path: path, width: frame.width, height: frame.height, fps: fps, font: font)
                            if let pending { video!.show(pending, names: names) }
                        }
                        try video!.append(frame)
                    }
                } catch {
                    lock.withLock { failure = error }
                    work.cancel()
                }
                let elapsed = milliseconds(since: start)
                lock.withLock { busyMs += elapsed }
            }
        }
    }

    /// The first error the stage met, if any.
    public var error: Error? { lock.withLock { failure } }

    /// Milliseconds the stage has spent drawing and encoding.
    public var busyMilliseconds: Double { lock.withLock { busyMs } }

    public func show(_ analysis: FrameAnalysis) { work.send(.show(analysis)) }

    public func append(_ frame: VideoFrame) { work.send(.frame(frame)) }

    /// Encodes what is queued, finalizes the file (playable) and rethrows the stage's error.
    public func finish() throws {
        work.close()
        stage.wait()
        let finished = Result { try video?.finish() }
        if let error { throw error }
        try finished.get()
    }
}
