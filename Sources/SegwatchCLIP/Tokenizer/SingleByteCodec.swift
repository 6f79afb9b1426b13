/// The single-byte codecs ftfy re-reads mojibake with (`chardata.CHARMAP_ENCODINGS`): each a
/// bijection between the 256 bytes and 256 characters (FtfyTables.swift). ftfy's "sloppy"
/// Windows codecs pass the bytes a codec leaves undefined through as Latin-1, and use byte 0x1A
/// for U+FFFD.
final class SingleByteCodec: Sendable {
    let name: String
    let isSloppy: Bool
    private let decodeTable: [Unicode.Scalar]
    private let encodeTable: [UInt32: UInt8]

    private init(name: String, table: [UInt16]) {
        precondition(table.count == 256)
        self.name = name
        self.isSloppy = name.hasPrefix("sloppy")
        decodeTable = table.map { Unicode.Scalar(UInt32($0))! }
        var encode: [UInt32: UInt8] = [:]
        for (byte, scalar) in table.enumerated() {
            encode[UInt32(scalar)] = UInt8(byte)
        }
        precondition(encode.count == 256, "\(name) is not a bijection")
        encodeTable = encode
    }

    @inline(__always)
    func decode(_ byte: UInt8) -> Unicode.Scalar {
        decodeTable[Int(byte)]
    }

    /// `text.encode(codec)`, or nil where a character has no byte (`possible_encoding` is false).
    func encode(_ text: [Unicode.Scalar]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for c in text {
            guard let byte = encodeTable[c.value] else { return nil }
            out.append(byte)
        }
        return out
    }

    /// In ftfy's order: latin-1, sloppy-windows-1252, -1251, -1250, -1253, -1254, -1257,
    /// iso-8859-2, macroman, cp437.
    static let charmapEncodings: [SingleByteCodec] = zip(FtfyTables.codecNames, FtfyTables.codecTables).map {
        SingleByteCodec(name: $0.0, table: $0.1)
    }

    static let latin1 = named("latin-1")
    static let sloppyWindows1252 = named("sloppy-windows-1252")
    static let macRoman = named("macroman")

    private static func named(_ name: String) -> SingleByteCodec {
        charmapEncodings.first { $0.name == name }!
    }
}
