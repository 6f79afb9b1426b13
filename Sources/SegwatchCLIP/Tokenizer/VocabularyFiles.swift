import CZlib
import Foundation

/// Reading the two vocabulary formats into the symbol table and merges of `BytePairEncoding`.
///
/// - OpenAI's `bpe_simple_vocab_16e6.txt.gz` (gzip or plain): line 0 a header, lines 1...48894
///   the merges `a b` in rank order (later lines are ignored). The vocabulary is built as
///   open_clip builds it: the 256 byte symbols in `bytes_to_unicode()` order, the same with
///   `</w>`, the concatenation of each merge, then `<start_of_text>`, `<end_of_text>`.
/// - transformers' hub files: `vocab.json` (token -> id) and `merges.txt` (a `#version` header,
///   then the merges), with the special tokens spelled `<|startoftext|>`, `<|endoftext|>`.
enum VocabularyFiles {
    /// open_clip: `merges[1:49152-256-2+1]`.
    static let mergeCount = 49152 - 256 - 2

    // MARK: OpenAI's BPE file

    static func loadBPEFile(_ path: String) throws(CLIPTokenizerError) -> BytePairEncoding {
        try loadBPE(try readFile(path), path: path)
    }

    /// The BPE file's bytes (gzip or plain); `path` names them in errors.
    static func loadBPE(_ bytes: [UInt8], path: String) throws(CLIPTokenizerError) -> BytePairEncoding {
        var bytes = bytes
        if bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B {
            bytes = try gunzip(bytes, path: path)
        }
        let lines = try utf8Lines(bytes, path: path)
        guard lines.count > mergeCount else {
            throw .malformed(path: path, line: 0, reason: "expected a header line and \(mergeCount) merges "
                + "(\"a b\" per line), found \(max(lines.count - 1, 0)) lines after the header")
        }
        var vocabulary: [String] = (0..<512).map { ByteEncoder.symbol(id: $0) }
        var merges: [(left: String, right: String, line: Int)] = []
        merges.reserveCapacity(mergeCount)
        for index in 1...mergeCount {
            let (left, right) = try mergePair(lines[index], path: path, line: index + 1)
            merges.append((left, right, index + 1))
            vocabulary.append(left + right)
        }
        vocabulary += ["<start_of_text>", "<end_of_text>"]
        // dict(zip(vocab, range(len(vocab)))): a repeated string keeps its last id.
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(vocabulary.count)
        for (id, symbol) in vocabulary.enumerated() { ids[symbol] = Int32(id) }
        return try BytePairEncoding(
            symbolIDs: ids, merges: merges, startOfText: ids["<start_of_text>"]!, endOfText: ids["<end_of_text>"]!,
            path: path, requireMergedSymbols: false)
    }

    // MARK: transformers' vocab.json + merges.txt

    static func loadHubFiles(vocabJSON: String, merges mergesPath: String) throws(CLIPTokenizerError) -> BytePairEncoding {
        let vocabBytes = try readFile(vocabJSON)
        let table: [String: Int]
        do {
            table = try JSONDecoder().decode([String: Int].self, from: Data(vocabBytes))
        } catch {
            throw .malformed(path: vocabJSON, line: 0, reason: "expected a JSON object of token -> integer id (\(error))")
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(table.count)
        for (token, id) in table {
            guard id >= 0, id <= Int(Int32.max) else {
                throw .malformed(path: vocabJSON, line: 0, reason: "token \(token.debugDescription) has id \(id), "
                    + "expected a non-negative 32-bit id")
            }
            ids[token] = Int32(id)
        }
        for id in 0..<512 where ids[ByteEncoder.symbol(id: id)] == nil {
            throw .malformed(path: vocabJSON, line: 0, reason: "expected the byte symbol "
                + "\(ByteEncoder.symbol(id: id).debugDescription) (CLIP's bytes_to_unicode alphabet)")
        }
        guard let sot = ids["<|startoftext|>"], let eot = ids["<|endoftext|>"] else {
            throw .malformed(path: vocabJSON, line: 0, reason: "expected the special tokens <|startoftext|> and <|endoftext|>")
        }
        var lines = try utf8Lines(readFile(mergesPath), path: mergesPath)
        guard let header = lines.first, header.hasPrefix("#version") else {
            throw .malformed(path: mergesPath, line: 1, reason: "expected a \"#version: ...\" header line")
        }
        while let last = lines.last, last.unicodeScalars.allSatisfy({ PythonText.isSpace($0.value) }) {
            lines.removeLast()
        }
        var merges: [(left: String, right: String, line: Int)] = []
        for index in lines.indices.dropFirst().prefix(mergeCount) {
            let (left, right) = try mergePair(lines[index], path: mergesPath, line: index + 1)
            merges.append((left, right, index + 1))
        }
        return try BytePairEncoding(symbolIDs: ids, merges: merges, startOfText: sot, endOfText: eot,
                                    path: mergesPath, requireMergedSymbols: true)
    }

    // MARK: helpers

    /// `line.split()` must give two symbols.
    private static func mergePair(_ line: Substring, path: String, line number: Int) throws(CLIPTokenizerError) -> (String, String) {
        let parts = line.unicodeScalars.split(whereSeparator: { PythonText.isSpace($0.value) })
        guard parts.count == 2 else {
            throw .malformed(path: path, line: number, reason: "expected a merge: two symbols separated by a space, "
                + "found \(String(line.prefix(80)).debugDescription)")
        }
        return (String(Substring(parts[0])), String(Substring(parts[1])))
    }

    /// The file as UTF-8 text, split at `\n` (like Python's `str.split('\n')`).
    private static func utf8Lines(_ bytes: [UInt8], path: String) throws(CLIPTokenizerError) -> [Substring] {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let line = 1 + (UTF8Decoding.firstInvalidOffset(bytes).map { bytes[..<$0].count(where: { $0 == 0x0A }) } ?? 0)
            throw .malformed(path: path, line: line, reason: "expected UTF-8 text")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    static func readFile(_ path: String) throws(CLIPTokenizerError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// gzip (all members) through zlib.
    static func gunzip(_ input: [UInt8], path: String) throws(CLIPTokenizerError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .unreadable(path: path, reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 4)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var failure: String?
        input.withUnsafeBufferPointer { inBuffer in
            stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
            stream.avail_in = UInt32(inBuffer.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = UInt32(outBuffer.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, outBuffer.count - Int(stream.avail_out))
                }
                output += chunk[0..<produced]
                if status == Z_STREAM_END {
                    if stream.avail_in == 0 { return }
                    // Another gzip member follows.
                    guard inflateReset(&stream) == Z_OK else {
                        failure = "corrupt gzip data (zlib could not reset)"
                        return
                    }
                    continue
                }
                if status == Z_OK { continue }
                if status == Z_BUF_ERROR, stream.avail_in == 0 {
                    failure = "truncated gzip data"
                    return
                }
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                failure = "corrupt gzip data (\(message))"
                return
            }
        }
        if let failure { throw .unreadable(path: path, reason: failure) }
        return output
    }
}
