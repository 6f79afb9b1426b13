import Foundation

/// The whole JSON-object lines of a file that may still be written to: a missing file is
/// empty, and a line cut off mid-write is left out.
public func jsonLines(_ path: String) -> [[String: Any]] {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}
