/// The entries of a zip archive, read from its central directory (ZIP64 included).
///
/// PyTorch writes tensors and pickles uncompressed ("stored"), so an entry is a byte range of
/// the mapped file. Compressed entries (TorchScript's `code/`) are listed but never inflated:
/// a reader that needs one refuses it.
struct ZipArchive {
    struct Entry {
        let name: String
        /// Offset of the entry's data in the file.
        let dataOffset: Int
        /// Bytes of data in the file: the entry's size when stored.
        let size: Int
        /// The compression method; 0 is stored, the only one whose bytes can be used.
        let method: Int
    }

    let entries: [Entry]

    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        func fail(_ reason: String) -> CheckpointError { .malformed(file: path, reason: "zip archive: \(reason)") }
        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at + 2 <= bytes.count else { throw fail("truncated at byte \(at)") }
            return Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
        }
        func u32(_ at: Int) throws -> Int {
            guard at >= 0, at + 4 <= bytes.count else { throw fail("truncated at byte \(at)") }
            return Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        }
        func u64(_ at: Int) throws -> Int {
            guard at >= 0, at + 8 <= bytes.count else { throw fail("truncated at byte \(at)") }
            let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            guard value <= UInt64(Int.max) else { throw fail("a 64-bit field is out of range") }
            return Int(value)
        }

        // The end-of-central-directory record sits in the last 64 KiB + 22 bytes.
        var end = -1
        var at = bytes.count - 22
        while at >= max(0, bytes.count - 22 - 65_535) {
            if try u32(at) == 0x0605_4B50 { end = at; break }
            at -= 1
        }
        guard end >= 0 else { throw fail("no end-of-central-directory record (not a zip file, or truncated)") }
        var count = try u16(end + 10)
        var directorySize = try u32(end + 12)
        var directoryOffset = try u32(end + 16)
        if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64: the locator just before points at the 64-bit record.
            guard end >= 20, try u32(end - 20) == 0x0706_4B50 else { throw fail("ZIP64 locator missing") }
            let record = try u64(end - 20 + 8)
            guard try u32(record) == 0x0606_4B50 else { throw fail("ZIP64 end record missing") }
            count = try u64(record + 32)
            directorySize = try u64(record + 40)
            directoryOffset = try u64(record + 48)
        }
        guard directoryOffset <= bytes.count, directorySize <= bytes.count - directoryOffset else {
            throw fail("the central directory lies outside the file (truncated?)")
        }
        guard count <= directorySize / 46 + 1 else { throw fail("\(count) entries cannot fit a \(directorySize)-byte directory") }

        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var cursor = directoryOffset
        for _ in 0..<count {
            guard try u32(cursor) == 0x0201_4B50 else { throw fail("bad central directory entry at byte \(cursor)") }
            let method = try u16(cursor + 10)
            var compressedSize = try u32(cursor + 20)
            var size = try u32(cursor + 24)
            let nameLength = try u16(cursor + 28), extraLength = try u16(cursor + 30), commentLength = try u16(cursor + 32)
            var localOffset = try u32(cursor + 42)
            guard cursor + 46 + nameLength <= bytes.count else { throw fail("truncated entry name") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[cursor + 46 ..< cursor + 46 + nameLength]), as: UTF8.self)
            // ZIP64 extra field: the 64-bit values of the fields saturated above, in order.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let tag = try u16(extra), length = try u16(extra + 2)
                if tag == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try u64(field); field += 8 }
                    if compressedSize == 0xFFFF_FFFF { compressedSize = try u64(field); field += 8 }
                    if localOffset == 0xFFFF_FFFF { localOffset = try u64(field) }
                }
                extra += 4 + length
            }
            guard try u32(localOffset) == 0x0403_4B50 else { throw fail("entry \(quoted(name)) has no local header at byte \(localOffset)") }
            let dataOffset = localOffset + 30 + (try u16(localOffset + 26)) + (try u16(localOffset + 28))
            guard dataOffset <= bytes.count, compressedSize <= bytes.count - dataOffset, method != 0 || compressedSize == size else {
                throw fail("entry \(quoted(name)) (\(compressedSize) bytes at \(dataOffset)) runs past the end of the file (truncated?)")
            }
            entries.append(Entry(name: name, dataOffset: dataOffset, size: compressedSize, method: method))
            cursor += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }
}
