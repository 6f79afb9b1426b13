import Foundation
import SegwatchCheckpoint
import SegwatchTestSupport
import Testing

/// SHA-256 against FIPS 180-4's examples and against `sha256sum` on every way of feeding it.
struct SHA256Tests {
    @Test func publishedVectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { million.update(chunk) }
        #expect(million.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    // Lengths around the block and padding edges, fed whole and in uneven pieces, against the
    // system's sha256sum.
    @Test func matchesSha256sumInAnyPieces() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var random = SplitMix(seed: 3)
        for length in [1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 4097] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let path = folder.path("b\(length)")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let expected = String(try runProcess("/usr/bin/sha256sum", [path]).output.prefix(64))
            #expect(SHA256.hex(bytes) == expected, "length \(length)")
            var pieces = SHA256(), offset = 0, step = 1
            while offset < length {
                pieces.update(Array(bytes[offset..<min(length, offset + step)]))
                offset += step
                step = step * 3 % 97 + 1
            }
            #expect(pieces.hexDigest() == expected, "length \(length) in pieces")
        }
    }
}
