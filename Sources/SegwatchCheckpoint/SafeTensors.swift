#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SegwatchTensor

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length N, N bytes of JSON describing each tensor, then the data.
///
/// Validated as the format's own loader does: the header length limit, a JSON object whose
/// entries have a known dtype, a shape of non-negative integers and `data_offsets` whose span
/// matches the shape; offsets that tile the data region exactly, without gaps or overlaps.
enum SafeTensors {
    /// The format's limit on the header, which keeps a hostile length from allocating gigabytes.
    static let maximumHeaderLength = 100_000_000

    static let dtypes: [String: DType] = [
        "F64": .float64, "F32": .float32, "F16": .float16, "BF16": .bfloat16,
        "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8, "U8": .uint8, "BOOL": .bool,
    ]

    static func read(_ file: MappedFile, path: String) throws -> StateDict {
        func fail(_ reason: String) -> CheckpointError { .malformed(file: path, reason: reason) }
        let bytes = file.buffer
        guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes is too short for a safetensors header (need at least 8)") }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(maximumHeaderLength) else {
            throw fail("header length \(declared) exceeds the format's limit of \(maximumHeaderLength) bytes")
        }
        let headerLength = Int(declared)
        guard headerLength <= bytes.count - 8 else {
            throw fail("header length \(headerLength) runs past the end of the \(bytes.count)-byte file")
        }
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else { throw fail("the header is not a JSON object") }
        guard let header = JSONValue.parse(Data(bytes[8 ..< 8 + headerLength])) else { throw fail("the header is not valid JSON") }
        guard let object = header.object else { throw fail("the header is not a JSON object") }

        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var spans: [(name: String, begin: Int, end: Int, dtype: DType, shape: [Int])] = []
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let fields = value.object, fields.values.allSatisfy({ $0.string != nil }) else {
                    throw fail("__metadata__ must map strings to strings")
                }
                metadata = fields.mapValues { $0.string! }
                continue
            }
            guard let info = value.object else { throw fail("entry \(quoted(name)) is not an object") }
            guard let dtypeName = info["dtype"]?.string else { throw fail("tensor \(quoted(name)) has no dtype") }
            guard let dtype = dtypes[dtypeName] else {
                throw fail("tensor \(quoted(name)) has dtype \(quoted(dtypeName)); expected one of \(dtypes.keys.sorted().joined(separator: ", "))")
            }
            guard let shape = integers(info["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor \(quoted(name)) has no valid shape (expected a list of non-negative integers)")
            }
            guard let offsets = integers(info["data_offsets"]), offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("tensor \(quoted(name)) has no valid data_offsets (expected [begin, end], 0 <= begin <= end)")
            }
            var count = 1
            for size in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow else { throw fail("tensor \(quoted(name)) shape \(shape) overflows") }
                count = product
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, byteCount == offsets[1] - offsets[0] else {
                throw fail("tensor \(quoted(name)) of shape \(shape) and dtype \(dtypeName) needs \(count) x \(dtype.byteCount) bytes; its data_offsets span \(offsets[1] - offsets[0])")
            }
            spans.append((name, offsets[0], offsets[1], dtype, shape))
        }

        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for span in spans {
            if span.begin < cursor { throw fail("tensor \(quoted(span.name)) overlaps the tensor before it (begins at \(span.begin), previous ends at \(cursor))") }
            if span.begin > cursor { throw fail("a gap of \(span.begin - cursor) bytes precedes tensor \(quoted(span.name))") }
            cursor = span.end
        }
        guard cursor == dataLength else {
            throw fail(cursor > dataLength
                ? "the tensors need \(cursor) bytes of data; the file has \(dataLength) (truncated?)"
                : "the tensors cover \(cursor) of the \(dataLength) data bytes")
        }
        let entries = spans.sorted { $0.name < $1.name }.map { span in
            TensorEntry(name: span.name, dtype: span.dtype, shape: span.shape,
                        strides: Tensor.contiguousStrides(span.shape),
                        storageByteOffset: dataStart + span.begin,
                        storageCount: span.shape.reduce(1, *), storageOffset: 0)
        }
        return try StateDict(path: path, file: file, entries: entries, metadata: metadata)
    }

    /// A JSON array of integers (numbers without fraction), or nil.
    private static func integers(_ value: JSONValue?) -> [Int]? {
        guard let array = value?.array else { return nil }
        let integers = array.compactMap(\.integer)
        return integers.count == array.count ? integers : nil
    }
}
