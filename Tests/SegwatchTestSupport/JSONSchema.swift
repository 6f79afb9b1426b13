import Foundation

/// A JSON Schema validator for the keywords segwatch's schemas use: `type`, `const`, `enum`,
/// `oneOf`, `required`, `properties`, `additionalProperties: false`, `items`, `prefixItems`,
/// `minItems`, `maxItems`, `minimum`, `maximum`, `minLength`, `pattern`. An unsupported keyword is reported, so a schema cannot silently ask
/// for more than is checked.
public struct JSONSchema {
    let root: [String: Any]
    static let annotations: Set<String> = ["$schema", "$id", "title", "description"]

    public init(contentsOf url: URL) throws {
        guard let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        self.root = root
    }

    /// The violations of `json` (one JSON text), empty when it is valid.
    public func violations(of json: Data) -> [String] {
        guard let value = try? JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) else { return ["not JSON"] }
        return check(value, root, "$")
    }

    private func isInteger(_ n: NSNumber) -> Bool { !isBool(n) && n.doubleValue.rounded() == n.doubleValue }
    /// JSON's true and false parse as NSNumbers of Objective-C type `c` (char).
    private func isBool(_ n: NSNumber) -> Bool { n.objCType.pointee == CChar(UInt8(ascii: "c")) }

    private func check(_ value: Any, _ schema: [String: Any], _ path: String) -> [String] {
        var errors: [String] = []
        for (key, rule) in schema where !Self.annotations.contains(key) {
            switch key {
            case "type":
                let type = rule as! String
                let ok: Bool = switch type {
                case "object": value is [String: Any]
                case "array": value is [Any]
                case "string": value is String
                case "number": (value as? NSNumber).map { !isBool($0) } ?? false
                case "integer": (value as? NSNumber).map(isInteger) ?? false
                case "boolean": (value as? NSNumber).map(isBool) ?? false
                default: false
                }
                if !ok { errors.append("\(path): expected \(type)") }
            case "const":
                if !equal(value, rule) { errors.append("\(path): expected \(rule)") }
            case "enum":
                if !(rule as! [Any]).contains(where: { equal(value, $0) }) { errors.append("\(path): \(value) not in \(rule)") }
            case "oneOf":
                let passing = (rule as! [[String: Any]]).filter { check(value, $0, path).isEmpty }.count
                if passing != 1 { errors.append("\(path): matches \(passing) of oneOf's schemas, not 1") }
            case "required":
                if let object = value as? [String: Any] {
                    for name in rule as! [String] where object[name] == nil { errors.append("\(path): no '\(name)'") }
                }
            case "properties":
                if let object = value as? [String: Any] {
                    for (name, sub) in rule as! [String: [String: Any]] {
                        if let field = object[name] { errors += check(field, sub, "\(path).\(name)") }
                    }
                }
            case "additionalProperties":
                guard rule as? Bool == false else { errors.append("\(path): additionalProperties is checked only when false"); break }
                if let object = value as? [String: Any] {
                    let known = Set(((schema["properties"] as? [String: Any]) ?? [:]).keys)
                    for name in object.keys.sorted() where !known.contains(name) { errors.append("\(path): '\(name)' is not a property of the schema") }
                }
            case "items":
                if let array = value as? [Any] {
                    let skip = (schema["prefixItems"] as? [Any])?.count ?? 0
                    for (i, item) in array.enumerated() where i >= skip { errors += check(item, rule as! [String: Any], "\(path)[\(i)]") }
                }
            case "prefixItems":
                if let array = value as? [Any] {
                    for (i, sub) in (rule as! [[String: Any]]).enumerated() where i < array.count { errors += check(array[i], sub, "\(path)[\(i)]") }
                }
            case "minItems":
                if let array = value as? [Any], array.count < rule as! Int { errors.append("\(path): fewer than \(rule) items") }
            case "maxItems":
                if let array = value as? [Any], array.count > rule as! Int { errors.append("\(path): more than \(rule) items") }
            case "minimum":
                if let n = value as? NSNumber, !isBool(n), n.doubleValue < (rule as! NSNumber).doubleValue { errors.append("\(path): \(n) < \(rule)") }
            case "maximum":
                if let n = value as? NSNumber, !isBool(n), n.doubleValue > (rule as! NSNumber).doubleValue { errors.append("\(path): \(n) > \(rule)") }
            case "minLength":
                if let text = value as? String, text.count < (rule as! NSNumber).intValue { errors.append("\(path): shorter than \(rule)") }
            case "pattern":
                if let text = value as? String, text.range(of: rule as! String, options: .regularExpression) == nil {
                    errors.append("\(path): '\(text.prefix(40))' does not match \(rule)")
                }
            default:
                errors.append("\(path): the schema's keyword '\(key)' is not supported by this validator")
            }
        }
        return errors
    }

    private func equal(_ a: Any, _ b: Any) -> Bool {
        switch (a, b) {
        case let (x as String, y as String): x == y
        case let (x as NSNumber, y as NSNumber): x == y
        default: false
        }
    }
}
