/// Which decoded frames of a file are analyzed at `fps` analyzed frames per second of video:
/// the first frame at or after each multiple of 1 / fps since the first frame's time. A rate
/// of 0 analyzes every frame. Frames whose time goes backwards are not analyzed twice.
public struct FrameSchedule: Sendable {
    public let fps: Double
    private var start: Double?
    private var lastSlot = Int.min

    public init(fps: Double) {
        precondition(fps >= 0 && fps.isFinite, "analysis rate \(fps)")
        self.fps = fps
    }

    /// Whether the frame at `pts` seconds is analyzed; call once per decoded frame, in order.
    public mutating func selects(pts: Double) -> Bool {
        guard fps > 0 else { return true }
        let start = self.start ?? pts
        self.start = start
        // A microsecond of slack: 0.2 s in a 25 fps file is 5 frame durations, not 4.999...
        let slot = Int(((pts - start) * fps + 1e-6).rounded(.down))
        guard slot > lastSlot else { return false }
        lastSlot = slot
        return true
    }
}
