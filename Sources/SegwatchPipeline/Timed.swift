import Dispatch

/// Runs `body` and adds its wall time, in milliseconds, to `timings[keyPath: slot]`: how the
/// labeler and the video analyzer split a frame's time by stage.
func timed<Timings, T>(_ timings: inout Timings, _ slot: WritableKeyPath<Timings, Double>, _ body: () throws -> T) rethrows -> T {
    let start = DispatchTime.now().uptimeNanoseconds
    defer { timings[keyPath: slot] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }
    return try body()
}
