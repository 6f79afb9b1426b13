/// Capped exponential backoff between reconnection attempts.
public struct Backoff: Sendable, Hashable {
    /// Delay before the first retry, in seconds.
    public var initial: Double
    /// Factor between two consecutive delays.
    public var multiplier: Double
    /// The longest delay, in seconds.
    public var maximum: Double

    public init(initial: Double = 0.5, multiplier: Double = 2, maximum: Double = 30) {
        self.initial = initial
        self.multiplier = multiplier
        self.maximum = maximum
    }

    /// Seconds to wait before retry number `attempt` (1-based).
    public func delay(attempt: Int) -> Double {
        guard attempt > 1 else { return min(initial, maximum) }
        // Stop multiplying once past the cap, so large attempt counts cannot overflow.
        var delay = initial
        for _ in 1..<attempt {
            delay *= multiplier
            if delay >= maximum { return maximum }
        }
        return delay
    }
}
