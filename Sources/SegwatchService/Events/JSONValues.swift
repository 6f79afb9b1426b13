import Foundation
import SegwatchSAM

/// Encodes `value` as one line of JSON with sorted keys (no newline): the same record is the
/// same bytes, run after run (Swift's key order otherwise changes between runs).
public func jsonString(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// A label index's name in the outputs; nil (below the thresholds) is "unknown".
public func labelName(_ label: Int?, _ names: [String]) -> String {
    label.map { names[$0] } ?? "unknown"
}

/// A score or probability as the JSON outputs give it: four decimals.
public func fourDecimals(_ value: some BinaryFloatingPoint) -> Double {
    (Double(value) * 10000).rounded() / 10000
}

/// A wall-clock time as the events give it: ISO 8601 in UTC with milliseconds,
/// `2026-12-06T10:15:02.360Z`.
public func isoTime(_ date: Date) -> String {
    let total = Int((date.timeIntervalSince1970 * 1000).rounded())
    var seconds = time_t(total / 1000)
    let milliseconds = total % 1000
    var parts = tm()
    gmtime_r(&seconds, &parts)
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                  Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
}

/// The date of an `isoTime` string (`2026-12-06T10:15:02.360Z`), or nil.
public func parseISOTime(_ text: String) -> Date? {
    let bytes = Array(text.utf8)
    guard bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[23] == UInt8(ascii: "Z") else { return nil }
    func number(_ range: Range<Int>) -> Int32? { Int32(String(decoding: bytes[range], as: UTF8.self)) }
    guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
          let minute = number(14..<16), let second = number(17..<19), let milliseconds = number(20..<23) else { return nil }
    var parts = tm()
    (parts.tm_year, parts.tm_mon, parts.tm_mday) = (year - 1900, month - 1, day)
    (parts.tm_hour, parts.tm_min, parts.tm_sec) = (hour, minute, second)
    return Date(timeIntervalSince1970: Double(timegm(&parts)) + Double(milliseconds) / 1000)
}

/// pycocotools' RLE object: `{"size": [h, w], "counts": "<compressed>"}`.
public struct CocoRLE: Encodable, Sendable {
    public var size: [Int]
    public var counts: String

    public init(_ rle: RLE) {
        size = [rle.height, rle.width]
        counts = rleToString(rle)
    }
}

/// `["car", 0.82]`: a name and a probability in one JSON array, as the event format has them.
public enum LabelScoreValue: Encodable, Sendable {
    case name(String)
    case probability(Float)

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .name(name): try container.encode(name)
        case let .probability(value): try container.encode(fourDecimals(value))
        }
    }
}

/// A JSON value built of dictionaries, arrays, strings and numbers (`JSONSerialization`'s kind)
/// as compact text, keys sorted, slashes left as they are.
public func jsonText(_ value: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
}
