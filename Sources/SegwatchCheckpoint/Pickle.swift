import SegwatchTensor

/// A value built by the data-only pickle machine.
///
/// Lists and dicts are reference types because pickle mutates memoized objects in place.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// An allow-listed name, not yet called.
    case global(AllowedGlobal)
    /// A typed storage from a persistent id: its dtype, archive key and element count.
    case storage(dtype: DType, key: String, count: Int)
    /// A tensor rebuilt by `_rebuild_tensor_v2`.
    case tensor(storageKey: String, dtype: DType, storageCount: Int, offset: Int, shape: [Int], strides: [Int])
    /// A TorchScript module or class instance: its attributes as data.
    case object(PickleObject)
}

/// A list, and how deep the containers in it nest (itself 1).
final class PickleList {
    var items: [PickleValue] = []
    var depth = 1
}
/// A dict, and how deep the containers in it nest (itself 1).
final class PickleDict {
    var items: [(key: PickleValue, value: PickleValue)] = []
    var depth = 1
}
/// A TorchScript object (`torch.jit.save` pickles the module tree, not a state dict): the class
/// name is kept for errors only; nothing of the class is ever looked up or run.
final class PickleObject {
    let className: String
    var attributes = PickleDict()
    init(className: String) { self.className = className }
}

/// The only names a checkpoint pickle may refer to. Nothing is ever imported or executed:
/// each is a fixed Swift rule that builds data.
enum AllowedGlobal {
    case orderedDict
    case rebuildTensorV2
    case rebuildParameter
    case storageType(DType)
    /// A TorchScript class (`__torch__.…`): instantiated empty by NEWOBJ, given its
    /// attributes by BUILD.
    case scriptClass(String)
    /// TorchScript's typed containers (`torch.jit._pickle.build_intlist(list)`,
    /// `restore_type_tag(value, type)`): the value itself.
    case typedValue

    init?(module: String, name: String) {
        if module == "__torch__" || module.hasPrefix("__torch__.") {
            self = .scriptClass("\(module).\(name)")
            return
        }
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch.jit._pickle", "build_intlist"), ("torch.jit._pickle", "build_doublelist"),
             ("torch.jit._pickle", "build_boollist"), ("torch.jit._pickle", "build_tensorlist"),
             ("torch.jit._pickle", "build_genericlist"), ("torch.jit._pickle", "restore_type_tag"):
            self = .typedValue
        case ("torch", "FloatStorage"): self = .storageType(.float32)
        case ("torch", "HalfStorage"): self = .storageType(.float16)
        case ("torch", "BFloat16Storage"): self = .storageType(.bfloat16)
        case ("torch", "LongStorage"): self = .storageType(.int64)
        case ("torch", "IntStorage"): self = .storageType(.int32)
        case ("torch", "BoolStorage"): self = .storageType(.bool)
        default: return nil
        }
    }
}

/// The subset of the pickle virtual machine that `torch.save` state dicts and `torch.jit.save`
/// module trees use (protocols 2-5), building data only. Every read is bounds-checked; unknown
/// opcodes and names are errors.
///
/// Nesting is bounded: a container more than `maximumDepth` deep is an error (a state dict
/// nests a few levels, a TorchScript module tree a few dozen). Swift frees nested values
/// recursively, so a file of a million nested tuples would overflow the stack when its values
/// are freed; depths are tracked as values are built, and `dismantle` frees what was built
/// (also what memo tricks nested past the tracking) one value at a time.
struct PickleMachine {
    let bytes: UnsafeRawBufferPointer
    let path: String
    static let maximumDepth = 1000
    private var position = 0
    /// Each value with its depth (tuples'; containers keep theirs, which grows as they fill).
    private var stack: [(value: PickleValue, depth: Int)] = []
    private var marks: [Int] = []
    private var memo: [Int: (value: PickleValue, depth: Int)] = [:]

    init(_ bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    private func fail(_ reason: String) -> CheckpointError {
        .malformed(file: path, reason: "pickle at byte \(position): \(reason)")
    }

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else { throw fail("truncated (wanted \(count) more bytes)") }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position ..< position + count])
    }

    private mutating func uint(_ width: Int) throws -> Int {
        let raw = try take(width)
        var value: UInt64 = 0
        for i in (0..<width).reversed() { value = value << 8 | UInt64(raw[i]) }
        guard value <= UInt64(Int.max) else { throw fail("length out of range") }
        return Int(value)
    }

    private mutating func line() throws -> String {
        guard let newline = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated line") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position ..< newline]), as: UTF8.self)
        position = newline + 1
        return text
    }

    private mutating func popEntry() throws -> (value: PickleValue, depth: Int) {
        guard let entry = stack.popLast() else { throw fail("stack underflow") }
        if let mark = marks.last, stack.count < mark { throw fail("popped past a mark") }
        return entry
    }

    private mutating func pop() throws -> PickleValue { try popEntry().value }

    private mutating func popEntriesToMark() throws -> ArraySlice<(value: PickleValue, depth: Int)> {
        guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no mark") }
        defer { stack.removeSubrange(mark...) }
        return stack[mark...]
    }

    private mutating func popToMark() throws -> [PickleValue] { try popEntriesToMark().map(\.value) }

    private mutating func topEntry() throws -> (value: PickleValue, depth: Int) {
        guard let entry = stack.last else { throw fail("stack underflow") }
        return entry
    }

    private mutating func top() throws -> PickleValue { try topEntry().value }

    private mutating func push(_ value: PickleValue, depth: Int = 0) { stack.append((value, depth)) }

    /// How deep the containers in a stack entry nest (0 for a scalar).
    private func depth(_ entry: (value: PickleValue, depth: Int)) -> Int {
        switch entry.value {
        case let .list(list): list.depth
        case let .dict(dict): dict.depth
        case let .object(object): object.attributes.depth + 1
        default: entry.depth
        }
    }

    /// `inner` nested one level deeper, checked against `maximumDepth`.
    private func nested(_ inner: Int) throws -> Int {
        guard inner < Self.maximumDepth else {
            throw fail("containers nest more than \(Self.maximumDepth) deep; a checkpoint's nest a few levels")
        }
        return inner + 1
    }

    /// A tuple of `entries`, with its depth.
    private mutating func pushTuple(_ entries: some Collection<(value: PickleValue, depth: Int)>) throws {
        push(.tuple(entries.map(\.value)), depth: try nested(entries.map(depth).max() ?? 0))
    }

    /// Runs to STOP and returns the result.
    mutating func run(persistentLoad: (PickleValue) throws -> PickleValue) throws -> PickleValue {
        while true {
            let opcode = try take(1)[0]
            switch opcode {
            case 0x80: _ = try take(1)                                  // PROTO
            case 0x95: _ = try take(8)                                  // FRAME
            case 0x2E: return try pop()                                 // STOP
            case 0x28: marks.append(stack.count)                        // MARK
            case 0x7D: push(.dict(PickleDict()))                        // EMPTY_DICT
            case 0x5D: push(.list(PickleList()))                        // EMPTY_LIST
            case 0x29: push(.tuple([]), depth: 1)                       // EMPTY_TUPLE
            case 0x4E: push(.none)                              // NONE
            case 0x88: push(.bool(true))                        // NEWTRUE
            case 0x89: push(.bool(false))                       // NEWFALSE
            case 0x4B: push(.int(try uint(1)))                  // BININT1
            case 0x4D: push(.int(try uint(2)))                  // BININT2
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x8A:                                                  // LONG1
                let count = try uint(1)
                guard count <= 8 else { throw fail("integer of \(count) bytes is out of range") }
                let raw = try take(count)
                var value: Int64 = 0
                for i in (0..<count).reversed() { value = value << 8 | Int64(raw[i]) }
                if count > 0 && count < 8 && raw[count - 1] & 0x80 != 0 { value -= Int64(1) << (8 * count) }
                push(.int(Int(value)))
            case 0x47:                                                  // BINFLOAT (big-endian)
                let raw = try take(8)
                var bits: UInt64 = 0
                for byte in raw { bits = bits << 8 | UInt64(byte) }
                push(.float(Double(bitPattern: bits)))
            case 0x58: push(.string(try string(try uint(4))))   // BINUNICODE
            case 0x8C: push(.string(try string(try uint(1))))   // SHORT_BINUNICODE
            case 0x8D: push(.string(try string(try uint(8))))   // BINUNICODE8
            case 0x43: push(.bytes(Array(try take(try uint(1)))))  // SHORT_BINBYTES
            case 0x42: push(.bytes(Array(try take(try uint(4)))))  // BINBYTES
            case 0x74: try pushTuple(try popEntriesToMark())            // TUPLE
            case 0x85: try pushTuple([try popEntry()])                  // TUPLE1
            case 0x86:                                                  // TUPLE2
                let b = try popEntry(), a = try popEntry()
                try pushTuple([a, b])
            case 0x87:                                                  // TUPLE3
                let c = try popEntry(), b = try popEntry(), a = try popEntry()
                try pushTuple([a, b, c])
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                push(try global(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case let .string(name) = try pop(), case let .string(module) = try pop() else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                push(try global(module, name))
            case 0x71: memo[try uint(1)] = try topEntry()               // BINPUT
            case 0x72: memo[try uint(4)] = try topEntry()               // LONG_BINPUT
            case 0x94: memo[memo.count] = try topEntry()                // MEMOIZE
            case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
                let key = try uint(opcode == 0x68 ? 1 : 4)
                guard let entry = memo[key] else { throw fail("memo \(key) is not set") }
                stack.append(entry)
            case 0x61:                                                  // APPEND
                let value = try popEntry()
                guard case let .list(list) = try top() else { throw fail("APPEND to a non-list") }
                list.depth = max(list.depth, try nested(depth(value)))
                list.items.append(value.value)
            case 0x65:                                                  // APPENDS
                let values = try popEntriesToMark()
                guard case let .list(list) = try top() else { throw fail("APPENDS to a non-list") }
                list.depth = max(list.depth, try nested(values.map(depth).max() ?? 0))
                list.items.append(contentsOf: values.map(\.value))
            case 0x73:                                                  // SETITEM
                let value = try popEntry(), key = try popEntry()
                guard case let .dict(dict) = try top() else { throw fail("SETITEM on a non-dict") }
                dict.depth = max(dict.depth, try nested(max(depth(key), depth(value))))
                dict.items.append((key.value, value.value))
            case 0x75:                                                  // SETITEMS
                let values = Array(try popEntriesToMark())
                guard values.count % 2 == 0, case let .dict(dict) = try top() else { throw fail("SETITEMS needs key-value pairs on a dict") }
                dict.depth = max(dict.depth, try nested(values.map(depth).max() ?? 0))
                for i in stride(from: 0, to: values.count, by: 2) { dict.items.append((values[i].value, values[i + 1].value)) }
            case 0x81:                                                  // NEWOBJ
                _ = try pop()
                guard case let .global(.scriptClass(name)) = try pop() else { throw fail("NEWOBJ of a name that is not a TorchScript class") }
                push(.object(PickleObject(className: name)))
            case 0x62:                                                  // BUILD
                // A TorchScript object takes its attributes; other state (an OrderedDict's
                // `_metadata`) is not needed for the tensors.
                let state = try pop()
                if case let .object(object) = try top() {
                    guard case let .dict(attributes) = state else { throw fail("the state of \(object.className) is not a dict of attributes") }
                    _ = try nested(attributes.depth)
                    object.attributes = attributes
                }
            case 0x51:                                                  // BINPERSID
                push(try persistentLoad(try pop()))
            case 0x52:                                                  // REDUCE
                let arguments = try popEntry(), callable = try pop()
                guard case let .global(function) = callable, case let .tuple(values) = arguments.value else {
                    throw fail("REDUCE needs an allowed name and an argument tuple")
                }
                // A value passed through keeps (at most) its arguments' depth.
                push(try call(function, values), depth: arguments.depth)
            default:
                let hex = String(opcode, radix: 16)
                throw fail("opcode 0x\(hex.count < 2 ? "0" + hex : hex) is not supported in a state dict")
            }
        }
    }

    /// Frees everything the machine built, and `root` (set to `.none`), one value at a time.
    ///
    /// Swift frees a value's children as part of freeing it, so a deep structure would be freed
    /// by a deep recursion. Here every value is first held by one flat array, root first, with
    /// lists and dicts emptied into it; the other references are dropped; then the array lets
    /// go of its values in order, so each value freed has no child left to free but its own
    /// entries, which the array still holds. Shared and cyclic containers are visited once.
    mutating func dismantle(_ root: inout PickleValue) {
        var all: [PickleValue] = [root]
        all.append(contentsOf: stack.map(\.value))
        all.append(contentsOf: memo.values.map(\.value))
        root = .none
        stack = []
        memo = [:]
        var visited = Set<ObjectIdentifier>()
        var next = 0
        while next < all.count {
            switch all[next] {
            case let .tuple(items):
                all.append(contentsOf: items)
            case let .list(list) where visited.insert(ObjectIdentifier(list)).inserted:
                all.append(contentsOf: list.items)
                list.items = []
            case let .dict(dict) where visited.insert(ObjectIdentifier(dict)).inserted:
                for (key, value) in dict.items { all += [key, value] }
                dict.items = []
            case let .object(object) where visited.insert(ObjectIdentifier(object)).inserted:
                all.append(.dict(object.attributes))
                object.attributes = PickleDict()
            default:
                break
            }
            next += 1
        }
        for index in all.indices { all[index] = .none }
    }

    private mutating func string(_ count: Int) throws -> String {
        String(decoding: try take(count), as: UTF8.self)
    }

    private func global(_ module: String, _ name: String) throws -> PickleValue {
        guard let allowed = AllowedGlobal(module: module, name: name) else {
            throw CheckpointError.forbiddenGlobal(file: path, name: "\(module).\(name)")
        }
        return .global(allowed)
    }

    /// Applies an allowed name to its arguments: pure data building.
    private func call(_ function: AllowedGlobal, _ arguments: [PickleValue]) throws -> PickleValue {
        switch function {
        case .orderedDict:
            guard arguments.isEmpty else { throw fail("OrderedDict with arguments") }
            return .dict(PickleDict())
        case .rebuildParameter:
            guard let data = arguments.first, case .tensor = data else { throw fail("_rebuild_parameter without a tensor") }
            return data
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard arguments.count >= 4, case let .storage(dtype, key, count) = arguments[0],
                  case let .int(offset) = arguments[1],
                  let shape = integers(arguments[2]), let strides = integers(arguments[3]) else {
                throw fail("_rebuild_tensor_v2 with unexpected arguments")
            }
            return .tensor(storageKey: key, dtype: dtype, storageCount: count, offset: offset, shape: shape, strides: strides)
        case .storageType:
            throw fail("a storage type cannot be called")
        case let .scriptClass(name):
            throw fail("\(name) can only be instantiated by NEWOBJ")
        case .typedValue:
            guard let value = arguments.first else { throw fail("a TorchScript container without its value") }
            return value
        }
    }

    private func integers(_ value: PickleValue) -> [Int]? {
        guard case let .tuple(items) = value else { return nil }
        var result: [Int] = []
        for item in items {
            guard case let .int(number) = item else { return nil }
            result.append(number)
        }
        return result
    }
}
