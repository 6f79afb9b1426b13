// Typed reads from a model's JSON configuration (transformers' `config.json`,
// `preprocessor_config.json`, open_clip's `open_clip_config.json`), shared by the models.
import Foundation

/// One JSON object of a configuration file; each failed read is an error of the model's own
/// type, made by `error` from the file and a reason naming the key path.
public struct ConfigFields<E: Error> {
    public let json: [String: Any]
    public let path: String
    public let prefix: String
    let error: (_ path: String, _ reason: String) -> E

    public init(_ json: [String: Any], path: String, prefix: String = "", error: @escaping (_ path: String, _ reason: String) -> E) {
        self.json = json
        self.path = path
        self.prefix = prefix
        self.error = error
    }

    /// The JSON object in the file at `path`; `unreadable` or `invalid` make its errors.
    public static func load(_ path: String, unreadable: (_ path: String, _ reason: String) -> E,
                            invalid: @escaping (_ path: String, _ reason: String) -> E) throws(E) -> ConfigFields {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw unreadable(path, error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dictionary = object as? [String: Any] else {
            throw invalid(path, "not a JSON object")
        }
        return ConfigFields(dictionary, path: path, error: invalid)
    }

    public func invalid(_ key: String, _ reason: String) -> E {
        error(path, "'\(prefix)\(key)': \(reason)")
    }

    public func has(_ key: String) -> Bool { json[key] != nil }

    public func object(_ key: String) throws(E) -> ConfigFields {
        guard let value = json[key] as? [String: Any] else { throw invalid(key, "missing or not an object") }
        return ConfigFields(value, path: path, prefix: prefix + key + ".", error: error)
    }

    /// A positive integer.
    public func int(_ key: String, default fallback: Int? = nil) throws(E) -> Int {
        guard let value = json[key] else {
            if let fallback { return fallback }
            throw invalid(key, "missing; expected a positive integer")
        }
        guard let number = value as? NSNumber, let int = Int(exactly: number.doubleValue), int > 0 else {
            throw invalid(key, "\(value); expected a positive integer")
        }
        return int
    }

    /// An integer of 0 or more.
    public func count(_ key: String, default fallback: Int) throws(E) -> Int {
        guard let value = json[key] else { return fallback }
        guard let number = value as? NSNumber, let int = Int(exactly: number.doubleValue), int >= 0 else {
            throw invalid(key, "\(value); expected an integer of 0 or more")
        }
        return int
    }

    /// A positive number.
    public func double(_ key: String, default fallback: Double) throws(E) -> Double {
        guard let value = json[key] else { return fallback }
        guard let number = value as? NSNumber, number.doubleValue > 0 else { throw invalid(key, "\(value); expected a positive number") }
        return number.doubleValue
    }

    public func bool(_ key: String, default fallback: Bool) throws(E) -> Bool {
        guard let value = json[key] else { return fallback }
        guard let bool = value as? Bool else { throw invalid(key, "\(value); expected true or false") }
        return bool
    }

    public func string(_ key: String, default fallback: String) throws(E) -> String {
        guard let value = json[key] else { return fallback }
        guard let string = value as? String else { throw invalid(key, "\(value); expected a string") }
        return string
    }

    public func floats(_ key: String, count: Int, default fallback: [Float]) throws(E) -> [Float] {
        guard let value = json[key] else { return fallback }
        guard let numbers = value as? [NSNumber], numbers.count == count else { throw invalid(key, "\(value); expected \(count) numbers") }
        return numbers.map { Float($0.doubleValue) }
    }
}
