/// CLIP's `bytes_to_unicode()`: every byte gets a printable stand-in character, so the BPE never
/// sees whitespace or control characters. Bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ` stand for
/// themselves; the other 68 bytes map to U+0100 upward, in byte order.
enum ByteEncoder {
    /// The bytes in the order of `bytes_to_unicode().values()`, which is also the order of the
    /// first 256 vocabulary ids (and, with `</w>` appended, of ids 256...511).
    static let orderedBytes: [UInt8] = {
        var bytes: [UInt8] = []
        bytes += Array(UInt8(ascii: "!")...UInt8(ascii: "~"))
        bytes += Array(UInt8(0xA1)...UInt8(0xAC))
        bytes += Array(UInt8(0xAE)...UInt8(0xFF))
        let printable = Set(bytes)
        for b in 0...255 where !printable.contains(UInt8(b)) {
            bytes.append(UInt8(b))
        }
        return bytes
    }()

    /// The stand-in character of each byte, indexed by byte value.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 0x100
        for (index, byte) in orderedBytes.enumerated() {
            if index < 188 {
                table[Int(byte)] = Unicode.Scalar(byte)
            } else {
                table[Int(byte)] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The vocabulary string of the byte symbol with id `id` (0...511; 256... carry `</w>`).
    static func symbol(id: Int) -> String {
        let byte = orderedBytes[id % 256]
        var s = String(Character(scalarForByte[Int(byte)]))
        if id >= 256 { s += "</w>" }
        return s
    }
}
