import Foundation
import SegwatchMedia
import SegwatchPipeline

/// `--video-out` as a stage of its own: drawing and encoding every source frame runs on its
/// thread while the next frame is analyzed. Its queue is bounded, so a slow encoder slows
/// the run instead of filling memory; its first error stops it and is rethrown to the run.
///
/// With `segmentSeconds`, the video is written in segments of that much video, each a file of
/// its own named by the wall clock when it started (`out-20261206-101502.mp4` for `out.mp4`):
/// each segment is finalized when the next starts, so a crash loses at most the open one, and
/// a restart never overwrites what an earlier run wrote.
public final class VideoSink: @unchecked Sendable {
    private enum Work: Sendable {
        case show(FrameAnalysis, names: [String])
        case frame(VideoFrame)
    }

    private let work = BoundedChannel<Work>(capacity: 8)
    private let lock = NSLock()
    // Written by the stage thread, read by the run (under `lock`).
    private var failure: Error?
    private var busyMs = 0.0
    // Owned by the stage thread until `finish()` has joined it.
    private var video: AnnotatedVideo?
    // The latest analysis, shown on the next file the video opens.
    private var pending: (analysis: FrameAnalysis, names: [String])?
    // The open segment: where its video starts (pts, else wall seconds), and the files written.
    private var segmentStart: Double?
    private var previousTime: Double?
    private var files: [String] = []
    private var stage: StageThread!

    /// - Parameter segmentSeconds: seconds of video per file (nil: one file at `path`).
    public init(path: String, fps: Double, font: String, segmentSeconds: Double? = nil) {
        stage = StageThread(name: "video-out") { [self] in
            while let item = work.receive() {
                let start = DispatchTime.now()
                do {
                    switch item {
                    case let .show(analysis, names):
                        pending = (analysis, names)
                        video?.show(analysis, names: names)
                    case let .frame(frame):
                        // The video's time: the frame's pts, or the wall clock when it has none
                        // or it goes back (a live source's reconnection starts it again).
                        let wall = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
                        var time = frame.pts ?? wall
                        if let previousTime, time < previousTime { segmentStart = nil; time = wall }
                        previousTime = time
                        if let segmentSeconds, video != nil, let started = segmentStart, time - started >= segmentSeconds {
                            try video!.finish()
                            video = nil
                        }
                        if video == nil {
                            let file = segmentSeconds == nil ? path : Self.segmentPath(path, at: Date(), after: files.last)
                            video = try AnnotatedVideo(path: file, width: frame.width, height: frame.height, fps: fps, font: font)
                            lock.withLock { files.append(file) }
                            segmentStart = time
                            if let pending { video!.show(pending.analysis, names: pending.names) }
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

    /// The files written so far (one, or one per segment).
    public var filesWritten: [String] { lock.withLock { files } }

    /// `out.mp4`'s segment started at `date`: `out-20261206-101502.mp4` (UTC), with `-2`, `-3`,
    /// ... when that name is taken (by `previous` or an earlier run).
    static func segmentPath(_ path: String, at date: Date, after previous: String?) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().path, ext = url.pathExtension.isEmpty ? "mp4" : url.pathExtension
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let stamp = String(format: "%04d%02d%02d-%02d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                           Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        var candidate = "\(stem)-\(stamp).\(ext)", n = 1
        while candidate == previous || FileManager.default.fileExists(atPath: candidate) {
            n += 1
            candidate = "\(stem)-\(stamp)-\(n).\(ext)"
        }
        return candidate
    }

    /// Draws `analysis` (labels by index into `names`) on the frames from the next one on.
    public func show(_ analysis: FrameAnalysis, names: [String]) { work.send(.show(analysis, names: names)) }

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
