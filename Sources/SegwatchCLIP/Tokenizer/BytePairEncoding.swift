import Synchronization

/// CLIP's byte-level BPE (`SimpleTokenizer.bpe`), on vocabulary ids instead of strings: a piece's
/// UTF-8 bytes become byte symbols (the last one with `</w>`), then the adjacent pair with the
/// lowest merge rank is merged, every occurrence left to right, until no adjacent pair is a
/// merge. Results are cached per piece (thread-safe, bounded).
final class BytePairEncoding: Sendable {
    /// The id of each byte's symbol, indexed by byte value, without and with `</w>`.
    let byteIDs: [Int32]
    let finalByteIDs: [Int32]
    /// (left id, right id) packed as `left << 32 | right` -> `rank << 32 | merged id`.
    let merges: [UInt64: UInt64]
    let startOfText: Int32
    let endOfText: Int32

    /// Pieces seen so far -> their ids; cleared when it grows past `cacheLimit`.
    private let cache = Mutex<[[UInt8]: [Int32]]>([:])
    static let cacheLimit = 100_000

    /// - Parameters:
    ///   - symbolIDs: vocabulary string -> id.
    ///   - merges: the merge pairs in rank order, with the file line of each (for errors).
    ///   - requireMergedSymbols: whether a merge whose parts or concatenation are not in the
    ///     vocabulary is an error (transformers' files) or can never apply (OpenAI's file, where
    ///     the vocabulary is built from the merges, as open_clip does).
    init(symbolIDs: [String: Int32], merges pairs: [(left: String, right: String, line: Int)],
         startOfText: Int32, endOfText: Int32, path: String, requireMergedSymbols: Bool) throws(CLIPTokenizerError) {
        var byteIDs = [Int32](repeating: 0, count: 256)
        var finalByteIDs = [Int32](repeating: 0, count: 256)
        for index in 0..<256 {
            let byte = Int(ByteEncoder.orderedBytes[index])
            guard let plain = symbolIDs[ByteEncoder.symbol(id: index)],
                  let final = symbolIDs[ByteEncoder.symbol(id: index + 256)] else {
                throw .malformed(path: path, line: 0, reason: "expected the byte symbol "
                    + "\(ByteEncoder.symbol(id: index).debugDescription) and its </w> form in the vocabulary")
            }
            byteIDs[byte] = plain
            finalByteIDs[byte] = final
        }
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(pairs.count)
        for (rank, pair) in pairs.enumerated() {
            guard let left = symbolIDs[pair.left], let right = symbolIDs[pair.right],
                  let merged = symbolIDs[pair.left + pair.right] else {
                if requireMergedSymbols {
                    throw .malformed(path: path, line: pair.line, reason: "expected a merge of two vocabulary symbols "
                        + "whose concatenation is also one; \(pair.left.debugDescription) + "
                        + "\(pair.right.debugDescription) is not")
                }
                continue
            }
            // dict(zip(merges, range(...))): a repeated pair keeps its last rank.
            merges[Self.key(left, right)] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        }
        self.byteIDs = byteIDs
        self.finalByteIDs = finalByteIDs
        self.merges = merges
        self.startOfText = startOfText
        self.endOfText = endOfText
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// The ids of one pre-tokenized piece, given as its UTF-8 bytes (not empty).
    func encode(piece bytes: [UInt8]) -> [Int32] {
        if bytes.count == 1 { return [finalByteIDs[Int(bytes[0])]] }
        if let hit = cache.withLock({ $0[bytes] }) { return hit }
        let ids = merge(bytes)
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[bytes] = ids
        }
        return ids
    }

    private func merge(_ bytes: [UInt8]) -> [Int32] {
        var word = bytes.map { byteIDs[Int($0)] }
        word[word.count - 1] = finalByteIDs[Int(bytes[bytes.count - 1])]
        var next: [Int32] = []
        next.reserveCapacity(word.count)
        while word.count > 1 {
            // The pair with the lowest rank (ranks are unique, so the entry names the pair).
            var best = UInt64.max
            var first = 0
            for k in 0..<(word.count - 1) {
                if let entry = merges[Self.key(word[k], word[k + 1])], entry < best {
                    best = entry
                    first = k
                }
            }
            if best == UInt64.max { break }
            let left = word[first], right = word[first + 1]
            let merged = Int32(bitPattern: UInt32(truncatingIfNeeded: best))
            next.removeAll(keepingCapacity: true)
            var k = 0
            while k < word.count {
                if k + 1 < word.count, word[k] == left, word[k + 1] == right {
                    next.append(merged)
                    k += 2
                } else {
                    next.append(word[k])
                    k += 1
                }
            }
            swap(&word, &next)
        }
        return word
    }
}
