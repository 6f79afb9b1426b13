import Foundation

/// A time given on the command line: ISO 8601 with a time (`parseISOTime`'s form, or without
/// milliseconds), a day (`2026-12-06`, its start in UTC), or a time ago (`90s`, `30m`, `24h`, `7d`).
public func parseSearchTime(_ text: String, now: Date) -> Date? {
    if let date = parseISOTime(text) { return date }
    let formatter = ISO8601DateFormatter()
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withFullDate]
    if text.count == 10, let date = formatter.date(from: text) { return date }
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    guard let unit = text.last.flatMap({ units[$0] }), let amount = Double(text.dropLast()), amount >= 0, amount.isFinite else { return nil }
    return now.addingTimeInterval(-amount * unit)
}
