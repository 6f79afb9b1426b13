/// OpenAI CLIP's tokenizer, an exact port of open_clip's `SimpleTokenizer()` (a copy of OpenAI's
/// `clip/simple_tokenizer.py`, default clean='lower', context length 77):
///
/// 1. `cleanText`: ftfy 6.3.1 `fix_text`, `html.unescape` twice, whitespace collapse, `lower()`;
/// 2. `PreTokenizer`: the CLIP regex (`'s|'t|...|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`, IGNORECASE);
/// 3. `BytePairEncoding`: each piece's UTF-8 bytes through `bytes_to_unicode` and the merges;
/// 4. `[SOT] + ids + [EOT]`, truncated to 77 with EOT kept last, padded with 0.
///
/// Thread-safe; the BPE results are cached per piece.
public struct CLIPTokenizer: Sendable {
    public static let contextLength = 77
    /// `<start_of_text>` (49406 in CLIP's vocabulary).
    public let startOfText: Int32
    /// `<end_of_text>` (49407).
    public let endOfText: Int32

    let bpe: BytePairEncoding

    /// OpenAI's BPE file (`bpe_simple_vocab_16e6.txt.gz`, gzip or plain text).
    public init(bpeFile path: String) throws(CLIPTokenizerError) {
        self.init(bpe: try VocabularyFiles.loadBPEFile(path))
    }

    /// transformers' hub files (`vocab.json` token->id, `merges.txt` with the `#version` header).
    public init(vocabJSON: String, merges: String) throws(CLIPTokenizerError) {
        self.init(bpe: try VocabularyFiles.loadHubFiles(vocabJSON: vocabJSON, merges: merges))
    }

    init(bpe: BytePairEncoding) {
        self.bpe = bpe
        startOfText = bpe.startOfText
        endOfText = bpe.endOfText
    }

    /// The BPE ids of a cleaned text, no SOT/EOT, untruncated.
    public func encode(_ text: String) -> [Int32] {
        let cleaned = cleanScalars(Array(text.unicodeScalars))
        var ids: [Int32] = []
        ids.reserveCapacity(cleaned.count)
        var bytes: [UInt8] = []
        for piece in PreTokenizer.split(cleaned) {
            switch piece {
            case .special(let index):
                // open_clip's `<start_of_text>`/`<end_of_text>` in the text are the special tokens.
                ids.append(index == 0 ? startOfText : endOfText)
            case .text(let range):
                bytes.removeAll(keepingCapacity: true)
                for c in cleaned[range] {
                    UTF8.encode(c) { bytes.append($0) }
                }
                ids += bpe.encode(piece: bytes)
            }
        }
        return ids
    }

    /// [SOT] + ids + [EOT], truncated to `contextLength` with EOT kept last, padded with 0.
    public func tokenize(_ text: String) -> [Int32] {
        let content = encode(text)
        var ids: [Int32] = [startOfText]
        ids.reserveCapacity(Self.contextLength)
        ids += content.prefix(Self.contextLength - 2)
        ids.append(endOfText)
        ids += repeatElement(0, count: Self.contextLength - ids.count)
        return ids
    }
}
