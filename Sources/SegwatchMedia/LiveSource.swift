import Foundation
import Synchronization

/// The connection state of a live source, as reported on `LiveSource.states`.
public enum SourceState: Sendable, Equatable {
    /// Opening the input; `attempt` is 0 for the first connection.
    case connecting(attempt: Int)
    /// The input is open and its video stream found.
    case connected
    /// The input failed or ended; `error` says why.
    case disconnected(error: String)
    /// Waiting `delay` seconds before attempt number `attempt`.
    case reconnecting(attempt: Int, delay: Double, error: String)
    /// The reader has ended: stopped, or out of attempts.
    case stopped(error: String?)

    /// The state's name as it appears in `source` events.
    public var name: String {
        switch self {
        case .connecting: return "connecting"
        case .connected: return "connected"
        case .disconnected: return "disconnected"
        case .reconnecting: return "reconnecting"
        case .stopped: return "stopped"
        }
    }
}

/// A live input (camera, RTSP) read by its own thread, which keeps only the newest frames.
///
/// The reader decodes as fast as the source sends and puts frames in a small buffer; when the
/// consumer is slower, the oldest buffered frame is dropped and counted, so the consumer
/// always gets a recent frame and memory stays bounded. When the input fails or ends, the
/// reader reconnects with capped exponential backoff and reports each change of state.
///
/// Blocking FFmpeg calls run on that dedicated thread, never on Swift's cooperative pool.
public final class LiveSource: Sendable {
    public let spec: InputSpec
    /// The newest frames, at most `bufferSize` waiting; ends when the reader stops.
    public let frames: AsyncStream<VideoFrame>
    /// Changes of connection state, newest kept if nobody reads them.
    public let states: AsyncStream<SourceState>

    private let gate = InterruptGate()
    private let counters = Mutex(Counters())

    struct Counters {
        var delivered = 0
        var dropped = 0
        var connections = 0
    }

    /// Starts reading `spec` at once.
    /// - Parameters:
    ///   - bufferSize: frames kept for a slow consumer before the oldest is dropped.
    ///   - maxAttempts: reconnections allowed in a row without a frame in between; nil = forever.
    ///   - paced: deliver frames no faster than their timestamps (as `ffmpeg -re`): for a file or
    ///     a lavfi graph standing in for a camera, which would otherwise be read as fast as it decodes.
    public init(_ spec: InputSpec, options: DecodeOptions = DecodeOptions(), bufferSize: Int = 2,
                backoff: Backoff = Backoff(), maxAttempts: Int? = nil, paced: Bool = false) {
        self.spec = spec
        let (frames, frameSink) = AsyncStream.makeStream(of: VideoFrame.self,
                                                         bufferingPolicy: .bufferingNewest(max(bufferSize, 1)))
        let (states, stateSink) = AsyncStream.makeStream(of: SourceState.self, bufferingPolicy: .bufferingNewest(64))
        self.frames = frames
        self.states = states
        let reader = Thread { [self] in
            read(options: options, backoff: backoff, maxAttempts: maxAttempts, paced: paced, frameSink: frameSink, stateSink: stateSink)
        }
        reader.name = "segwatch.live-reader"
        frameSink.onTermination = { [gate] _ in gate.stop() }
        reader.start()
    }

    deinit { gate.stop() }

    /// Stops the reader: blocking calls are interrupted, and both streams end.
    public func stop() { gate.stop() }

    /// Frames handed to the buffer since the start.
    public var delivered: Int { counters.withLock { $0.delivered } }
    /// Frames dropped because the consumer was behind.
    public var dropped: Int { counters.withLock { $0.dropped } }
    /// Successful connections since the start.
    public var connections: Int { counters.withLock { $0.connections } }

    private func read(options: DecodeOptions, backoff: Backoff, maxAttempts: Int?, paced: Bool,
                      frameSink: AsyncStream<VideoFrame>.Continuation,
                      stateSink: AsyncStream<SourceState>.Continuation) {
        var attempt = 0
        var lastError: String?
        while !gate.isStopped {
            stateSink.yield(.connecting(attempt: attempt))
            var reason: String
            do {
                let decoder = try VideoDecoder(spec, options: options, gate: gate)
                counters.withLock { $0.connections += 1 }
                stateSink.yield(.connected)
                var clock: (start: Date, pts: Double)?
                while let frame = try decoder.next() {
                    attempt = 0
                    if paced, let pts = frame.pts {
                        if let clock { sleep(seconds: pts - clock.pts - Date().timeIntervalSince(clock.start)) } else { clock = (Date(), pts) }
                        if gate.isStopped { break }
                    }
                    switch frameSink.yield(frame) {
                    case .enqueued:
                        counters.withLock { $0.delivered += 1 }
                    case .dropped:
                        counters.withLock { $0.delivered += 1; $0.dropped += 1 }
                    case .terminated:
                        gate.stop()
                    @unknown default:
                        break
                    }
                    if gate.isStopped { break }
                }
                reason = "the stream ended"
            } catch let failure as MediaError {
                reason = failure.description
            } catch {
                reason = "\(error)"
            }
            if gate.isStopped { break }
            lastError = reason
            stateSink.yield(.disconnected(error: reason))
            attempt += 1
            if let maxAttempts, attempt > maxAttempts { break }
            let delay = backoff.delay(attempt: attempt)
            stateSink.yield(.reconnecting(attempt: attempt, delay: delay, error: reason))
            sleep(seconds: delay)
        }
        stateSink.yield(.stopped(error: gate.isStopped ? nil : lastError))
        stateSink.finish()
        frameSink.finish()
    }

    /// Sleeps in short steps so that `stop()` is honoured promptly.
    private func sleep(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !gate.isStopped, Date() < end {
            Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow)))
        }
    }
}
