import Foundation
import SegwatchCheckpoint
import Testing

struct XXH64Tests {
    // The specification's published values (xxhsum -H1 and the reference sanity checks): the
    // short inputs exercise each tail path, the long ones the 32-byte stripes and their merge.
    @Test(arguments: [
        ("", UInt64(0), UInt64(0xEF46_DB37_51D8_E999)),
        ("a", 0, 0xD24E_C4F1_A98C_6E5B),
        ("abc", 0, 0x44BC_2CF5_AD77_0999),
        ("abc", 12345, 0x0170_0E64_F6F2_3509),
        ("0123456789abcdef0123456789abcdef", 0, 0x642A_9495_8E71_E6C5),
        (String(repeating: "a", count: 32), 0, 0x856E_8432_98F9_9AD7),
        ("Nobody inspects the spammish repetition", 0, 0xFBCE_A83C_8A37_8BF1),
        ("The quick brown fox jumps over the lazy dog", 0, 0x0B24_2D36_1FDA_71BC),
    ])
    func matchesTheReferenceValues(text: String, seed: UInt64, expected: UInt64) {
        #expect(XXH64.hash(Array(text.utf8), seed: seed) == expected, "\(text)")
    }

    // Streaming must not depend on how the input is cut: every split of 0..200 bytes into two
    // or three updates gives the one-shot value.
    @Test func anySplitGivesTheOneShotValue() {
        let bytes = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in [0, 1, 7, 31, 32, 33, 63, 64, 65, 100, 200] {
            let input = Array(bytes.prefix(length))
            let whole = XXH64.hash(input)
            for cut in 0...length {
                for second in cut...min(length, cut + 40) {
                    var hasher = XXH64()
                    hasher.update(Array(input[..<cut]))
                    hasher.update(Array(input[cut..<second]))
                    hasher.update(Array(input[second...]))
                    #expect(hasher.digest() == whole, "length \(length), cuts \(cut) \(second)")
                }
            }
        }
    }

    @Test func hexIsSixteenDigits() {
        #expect(hexDigest(0x1F) == "000000000000001f")
        #expect(hexDigest(0xEF46_DB37_51D8_E999) == "ef46db3751d8e999")
    }
}

struct FileDigestTests {
    private func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-digest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func isTheHashOfTheBytes() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("weights.bin")
        // Larger than one 4 MiB read, and not a multiple of the 32-byte stripe.
        let bytes = (0..<(5 << 20) + 13).map { UInt8(truncatingIfNeeded: $0 * 2_654_435_761 >> 7) }
        try Data(bytes).write(to: file)
        #expect(try fileDigest(file.path) == XXH64.hash(bytes))
    }

    // The memo must never outlive the bytes it describes: a rewrite of the same size is seen.
    @Test func memoFollowsTheFile() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("weights.bin"), memo = folder.appendingPathComponent("memo")
        try Data("first version".utf8).write(to: file)
        let first = try fileDigest(file.path, memo: memo)
        #expect(first == XXH64.hash(Array("first version".utf8)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: memo.path).count == 1)
        #expect(try fileDigest(file.path, memo: memo) == first)
        try Data("other version".utf8).write(to: file)
        #expect(try fileDigest(file.path, memo: memo) == XXH64.hash(Array("other version".utf8)))
        // A damaged memo entry is recomputed, not trusted.
        let entry = memo.appendingPathComponent(try FileManager.default.contentsOfDirectory(atPath: memo.path)[0])
        try Data("garbage".utf8).write(to: entry)
        #expect(try fileDigest(file.path, memo: memo) == XXH64.hash(Array("other version".utf8)))
    }

    @Test func missingFileIsAnError() throws {
        #expect(throws: CheckpointError.self) { try fileDigest("/nonexistent/weights.bin") }
    }

    @Test func atomicWriteLeavesNoTemporaryFiles() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("pack")
        try writeAtomically(Data("one".utf8), to: file)
        try writeAtomically(Data("two".utf8), to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["pack"])
        #expect(throws: CheckpointError.self) { try writeAtomically(Data(), to: folder.appendingPathComponent("missing/pack")) }
    }
}
