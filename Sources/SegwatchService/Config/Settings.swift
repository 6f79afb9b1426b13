import Foundation
internal import TOMLKit

/// A value of a flat settings file (a `run --profile`), by its TOML type.
public enum SettingValue: Sendable, Equatable {
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case strings([String])
    /// A table, a date, or an array of something else: described for the message.
    case other(String)

    public var description: String {
        switch self {
        case let .bool(value): "the boolean \(value)"
        case let .integer(value): "the integer \(value)"
        case let .number(value): "the number \(value)"
        case let .string(value): "the string \(value.debugDescription)"
        case .strings: "an array of strings"
        case let .other(what): what
        }
    }
}

/// The top-level keys of the TOML file at `path`, in the file's order, each with its value
/// and line: for settings files whose keys a command maps onto its own options.
public func readSettings(_ path: String, what: String = "settings file") throws -> [(key: String, value: SettingValue, line: Int?)] {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
          data.count <= ServiceConfig.maximumBytes else {
        throw ConfigError(file: path, line: nil, message: "cannot read the \(what) (a TOML file of `key = value` lines is expected)")
    }
    let table: TOMLTable
    do {
        table = try TOMLTable(string: text)
    } catch let error as TOMLParseError {
        throw ConfigError(file: path, line: Int(error.source.begin.line), message: "not TOML: \(error.description)")
    }
    let lines = KeyLines(text)
    let settings = table.keys.map { key -> (key: String, value: SettingValue, line: Int?) in
        let value = table[key]!
        let setting: SettingValue
        switch value.type {
        case .bool: setting = .bool(value.bool!)
        case .int: setting = .integer(value.int!)
        case .double: setting = .number(value.double!)
        case .string: setting = .string(value.string!)
        case .array:
            let items = value.array!.compactMap { $0.string }
            setting = items.count == value.array!.count ? .strings(items) : .other("an array of other things than strings")
        case .table: setting = .other("a table")
        default: setting = .other("a date or time")
        }
        return (key, setting, lines.line(of: key, in: "") ?? lines.header(of: key))
    }
    return settings.sorted { ($0.line ?? .max) < ($1.line ?? .max) }
}
