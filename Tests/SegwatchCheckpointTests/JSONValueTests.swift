import Foundation
import SegwatchCheckpoint
import Testing

// The JSON the readers see (safetensors headers, model configurations), read and written without
// JSONSerialization.
@Suite struct JSONValueTests {
    @Test func readsEveryKindAndTellsBooleansFromNumbers() throws {
        let text = #"{"a": [1, 2.5, -3e2, true, false, null, "x\"y\u00e9"], "b": {"c": {}}, "d": 9007199254740993}"#
        let value = try #require(JSONValue.parse(Data(text.utf8)))
        let a = try #require(value.object?["a"]?.array)
        #expect(a == [.number(1), .number(2.5), .number(-300), .bool(true), .bool(false), .null, .string("x\"yé")])
        #expect(a[0].integer == 1 && a[1].integer == nil && a[3].integer == nil && a[3].number == nil)
        #expect(value.object?["b"]?.object?["c"] == .object([:]))
        // Past 2^53 an integer is not exact in a double: not an integer.
        #expect(value.object?["d"]?.integer == nil)
        for bad in ["", "{", "{\"a\": nope}", "[1 2]", "{\"a\" 1}"] { #expect(JSONValue.parse(Data(bad.utf8)) == nil, "\(bad)") }
    }

    @Test func writesCompactSortedJSONThatReadsBack() throws {
        let value = JSONValue.object(["z": .array([.number(3), .number(0.5)]), "a": .string("p/q"), "m": .bool(true)])
        let text = String(decoding: try value.serialized(), as: UTF8.self)
        #expect(text == #"{"a":"p/q","m":true,"z":[3,0.5]}"#)
        #expect(JSONValue.parse(Data(text.utf8)) == value)
        // JSONSerialization reads it the same.
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((object?["z"] as? [Double]) == [3, 0.5])
    }
}
