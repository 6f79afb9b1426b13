// Typed reads from a model's JSON configuration (transformers' `config.json`,
// `preprocessor_config.json`, open_clip's `open_clip_config.json`), shared by the models.
import SegwatchCheckpoint

/// One JSON object of a configuration file; each failed read is an error of the model's own
/// type, made by `error` from the file and a reason naming the key path.
public struct ConfigFields<E: Error> {
    public let json: [String: JSONValue]
    public let path: String
    public let prefix: String
    let error: (_ path: String, _ reason: String) -> E

    public init(_ json: [String: JSONValue], path: String, prefix: String = "", error: @escaping (_ path: String, _ reason: String) -> E) {
        self.json = json
        self.path = path
        self.prefix = prefix
        self.error = error
    }

    /// The JSON object in the file at `path`; `unreadable` or `invalid` make its errors.
    public static func load(_ path: String, unreadable: (_ path: String, _ reason: String) -> E,
                            invalid: @escaping (_ path: String, _ reason: String) -> E) throws(E) -> ConfigFields {
        let dictionary: [String: JSONValue]?
        do { dictionary = JSONValue.parse(try fileContents(path))?.object } catch { throw unreadable(path, error.reason) }
        guard let dictionary else { throw invalid(path, "not a JSON object") }
        return ConfigFields(dictionary, path: path, error: invalid)
    }

    public func invalid(_ key: String, _ reason: String) -> E {
        error(path, "'\(prefix)\(key)': \(reason)")
    }

    public func has(_ key: String) -> Bool { json[key] != nil }

    public func object(_ key: String) throws(E) -> ConfigFields {
        guard let value = json[key]?.object else { throw invalid(key, "missing or not an object") }
        return ConfigFields(value, path: path, prefix: prefix + key + ".", error: error)
    }

    /// A positive integer.
    public func int(_ key: String, default fallback: Int? = nil) throws(E) -> Int {
        guard let value = json[key] else {
            if let fallback { return fallback }
            throw invalid(key, "missing; expected a positive integer")
        }
        guard let int = value.integer, int > 0 else {
            throw invalid(key, "\(value); expected a positive integer")
        }
        return int
    }

    /// An integer of 0 or more.
    public func count(_ key: String, default fallback: Int) throws(E) -> Int {
        guard let value = json[key] else { return fallback }
        guard let int = value.integer, int >= 0 else {
            throw invalid(key, "\(value); expected an integer of 0 or more")
        }
        return int
    }

    /// A positive number.
    public func double(_ key: String, default fallback: Double) throws(E) -> Double {
        guard let value = json[key] else { return fallback }
        guard let number = value.number, number > 0 else { throw invalid(key, "\(value); expected a positive number") }
        return number
    }

    public func bool(_ key: String, default fallback: Bool) throws(E) -> Bool {
        guard let value = json[key] else { return fallback }
        guard let bool = value.bool else { throw invalid(key, "\(value); expected true or false") }
        return bool
    }

    public func string(_ key: String, default fallback: String) throws(E) -> String {
        guard let value = json[key] else { return fallback }
        guard let string = value.string else { throw invalid(key, "\(value); expected a string") }
        return string
    }

    public func floats(_ key: String, count: Int, default fallback: [Float]) throws(E) -> [Float] {
        guard let value = json[key] else { return fallback }
        guard let numbers = value.array?.compactMap(\.number), numbers.count == count, value.array?.count == count else {
            throw invalid(key, "\(value); expected \(count) numbers")
        }
        return numbers.map { Float($0) }
    }
}
