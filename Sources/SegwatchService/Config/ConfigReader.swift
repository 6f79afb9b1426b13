import Foundation
internal import TOMLKit

/// A mistake in a config file: the file, the line where the text has one, and what was expected.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let message: String

    public init(file: String, line: Int?, message: String) {
        (self.file, self.line, self.message) = (file, line, message)
    }

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// What every table of one file shares: where it is, where its keys are, and where secrets come from.
struct ConfigSource: Sendable {
    let file: String
    let lines: KeyLines
    let environment: [String: String]

    /// `${NAME}` in a string: the environment's `NAME`, else the file `NAME` in systemd's
    /// `$CREDENTIALS_DIRECTORY` (`LoadCredential=NAME:/path`), its trailing newline dropped.
    /// `$$` is a `$`. Secrets thus never have to be on a command line or in the file.
    func substitute(_ text: String, fail: (String) -> ConfigError) throws -> String {
        guard text.contains("$") else { return text }
        var result = "", rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.first == "$" {
                result += "$"
                rest = after.dropFirst()
                continue
            }
            guard after.first == "{", let close = after.firstIndex(of: "}") else {
                throw fail("a `$` starts `${NAME}` (a secret from the environment or a credential) or is written `$$`")
            }
            let name = String(after[after.index(after: after.startIndex)..<close])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw fail("${\(name)}: a name is letters, digits and _")
            }
            if let value = environment[name] {
                result += value
            } else if let folder = environment["CREDENTIALS_DIRECTORY"],
                      let data = FileManager.default.contents(atPath: folder + "/" + name) {
                var value = String(decoding: data, as: UTF8.self)
                while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
                result += value
            } else {
                throw fail("${\(name)} is not set: export \(name) in segwatch's environment (systemd: Environment= or EnvironmentFile=), or pass it as a credential (LoadCredential=\(name):/path/to/file)")
            }
            rest = after[after.index(after: close)...]
        }
        return result + rest
    }
}

/// One table of a config file, read key by key with types and bounds checked; `finish()`
/// refuses the keys nobody read, so a misspelt key is an error, not a silent default.
final class TableReader {
    let table: TOMLTable
    /// `engine`, `camera[2]`, `engine.generator`: how messages and `KeyLines` name it.
    let path: String
    let source: ConfigSource
    private var read: Set<String> = []

    init(_ table: TOMLTable, path: String, source: ConfigSource) {
        self.table = table
        self.path = path
        self.source = source
    }

    /// `key` under this table, as messages name it (`camera[2].fps`).
    private func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String?, _ message: String) -> ConfigError {
        let line = key.flatMap { source.lines.line(of: $0, in: path) ?? source.lines.header(of: keyPath($0)) } ?? source.lines.header(of: path)
        return ConfigError(file: source.file, line: line, message: key.map { "\(keyPath($0)): \(message)" } ?? "[\(path)]: \(message)")
    }

    private func value(_ key: String) -> TOMLValueConvertible? {
        read.insert(key)
        return table[key]
    }

    private func wrongType(_ key: String, _ value: TOMLValueConvertible, _ expected: String) -> ConfigError {
        error(key, "expected \(expected), not \(Self.describe(value))")
    }

    static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .bool: "the boolean \(value.bool!)"
        case .int: "the integer \(value.int!)"
        case .double: "the number \(value.double!)"
        case .string: "the string \"\(value.string!.prefix(60))\""
        case .array: "an array"
        case .table: "a table"
        default: "a date or time"
        }
    }

    func has(_ key: String) -> Bool { table.contains(key: key) }

    /// Marks `key` as read by its caller (the root's array of camera tables).
    func markRead(_ key: String) { read.insert(key) }

    func string(_ key: String, _ expected: String, secrets: Bool = true) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value.string else { throw wrongType(key, value, expected) }
        return secrets ? try source.substitute(text) { error(key, $0) } : text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard let flag = value.bool else { throw wrongType(key, value, "true or false") }
        return flag
    }

    func int(_ key: String, in range: ClosedRange<Int>, _ expected: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard value.type == .int, let number = value.int else { throw wrongType(key, value, "\(expected), an integer in \(range)") }
        guard range.contains(number) else { throw error(key, "\(number) is out of range; expected \(expected), an integer in \(range)") }
        return number
    }

    /// A number; integers are taken too (`fps = 1`).
    func double(_ key: String, in range: ClosedRange<Double>, _ expected: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        let number: Double
        switch value.type {
        case .double: number = value.double!
        case .int: number = Double(value.int!)
        default: throw wrongType(key, value, "\(expected), a number in \(range.lowerBound)...\(range.upperBound)")
        }
        guard number.isFinite, range.contains(number) else {
            throw error(key, "\(number) is out of range; expected \(expected), a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func strings(_ key: String, _ expected: String) throws -> [String]? {
        guard let value = value(key) else { return nil }
        guard let array = value.array else { throw wrongType(key, value, "an array of strings (\(expected))") }
        return try array.map { item in
            guard let text = item.string else { throw wrongType(key, item, "an array of strings (\(expected))") }
            return try source.substitute(text) { error(key, $0) }
        }
    }

    func table(_ key: String) throws -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else { throw wrongType(key, value, "a table ([\(keyPath(key))])") }
        return TableReader(table, path: keyPath(key), source: source)
    }

    /// Every key must have been read: an unknown one is named with the keys this table takes.
    func finish(known: [String]) throws {
        for key in table.keys.sorted() where !read.contains(key) {
            let suggestion = known.min { editDistance($0, key) < editDistance($1, key) }.flatMap { editDistance($0, key) <= 3 ? " (did you mean `\($0)`?)" : nil } ?? ""
            let table = path.isEmpty ? "the file" : "[\(path.replacingOccurrences(of: #"\[\d+\]"#, with: "", options: .regularExpression))]"
            throw error(key, "unknown key\(suggestion); \(table) takes \(known.joined(separator: ", "))")
        }
    }
}

/// Levenshtein distance, for "did you mean".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
