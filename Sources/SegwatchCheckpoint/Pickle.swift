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

final class PickleList { var items: [PickleValue] = [] }
final class PickleDict { var items: [(key: PickleValue, value: PickleValue)] = [] }
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
struct PickleMachine {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

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

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast() else { throw fail("stack underflow") }
        if let mark = marks.last, stack.count < mark { throw fail("popped past a mark") }
        return value
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no mark") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private mutating func top() throws -> PickleValue {
        guard let value = stack.last else { throw fail("stack underflow") }
        return value
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
            case 0x7D: stack.append(.dict(PickleDict()))                // EMPTY_DICT
            case 0x5D: stack.append(.list(PickleList()))                // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                         // EMPTY_TUPLE
            case 0x4E: stack.append(.none)                              // NONE
            case 0x88: stack.append(.bool(true))                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                       // NEWFALSE
            case 0x4B: stack.append(.int(try uint(1)))                  // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x8A:                                                  // LONG1
                let count = try uint(1)
                guard count <= 8 else { throw fail("integer of \(count) bytes is out of range") }
                let raw = try take(count)
                var value: Int64 = 0
                for i in (0..<count).reversed() { value = value << 8 | Int64(raw[i]) }
                if count > 0 && count < 8 && raw[count - 1] & 0x80 != 0 { value -= Int64(1) << (8 * count) }
                stack.append(.int(Int(value)))
            case 0x47:                                                  // BINFLOAT (big-endian)
                let raw = try take(8)
                var bits: UInt64 = 0
                for byte in raw { bits = bits << 8 | UInt64(byte) }
                stack.append(.float(Double(bitPattern: bits)))
            case 0x58: stack.append(.string(try string(try uint(4))))   // BINUNICODE
            case 0x8C: stack.append(.string(try string(try uint(1))))   // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try string(try uint(8))))   // BINUNICODE8
            case 0x43: stack.append(.bytes(Array(try take(try uint(1)))))  // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try take(try uint(4)))))  // BINBYTES
            case 0x74: stack.append(.tuple(try popToMark()))            // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                // TUPLE1
            case 0x86:                                                  // TUPLE2
                let b = try pop(), a = try pop()
                stack.append(.tuple([a, b]))
            case 0x87:                                                  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(.tuple([a, b, c]))
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case let .string(name) = try pop(), case let .string(module) = try pop() else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                stack.append(try global(module, name))
            case 0x71: memo[try uint(1)] = try top()                    // BINPUT
            case 0x72: memo[try uint(4)] = try top()                    // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()                     // MEMOIZE
            case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
                let key = try uint(opcode == 0x68 ? 1 : 4)
                guard let value = memo[key] else { throw fail("memo \(key) is not set") }
                stack.append(value)
            case 0x61:                                                  // APPEND
                let value = try pop()
                guard case let .list(list) = try top() else { throw fail("APPEND to a non-list") }
                list.items.append(value)
            case 0x65:                                                  // APPENDS
                let values = try popToMark()
                guard case let .list(list) = try top() else { throw fail("APPENDS to a non-list") }
                list.items.append(contentsOf: values)
            case 0x73:                                                  // SETITEM
                let value = try pop(), key = try pop()
                guard case let .dict(dict) = try top() else { throw fail("SETITEM on a non-dict") }
                dict.items.append((key, value))
            case 0x75:                                                  // SETITEMS
                let values = try popToMark()
                guard values.count % 2 == 0, case let .dict(dict) = try top() else { throw fail("SETITEMS needs key-value pairs on a dict") }
                for i in stride(from: 0, to: values.count, by: 2) { dict.items.append((values[i], values[i + 1])) }
            case 0x81:                                                  // NEWOBJ
                _ = try pop()
                guard case let .global(.scriptClass(name)) = try pop() else { throw fail("NEWOBJ of a name that is not a TorchScript class") }
                stack.append(.object(PickleObject(className: name)))
            case 0x62:                                                  // BUILD
                // A TorchScript object takes its attributes; other state (an OrderedDict's
                // `_metadata`) is not needed for the tensors.
                let state = try pop()
                if case let .object(object) = try top() {
                    guard case let .dict(attributes) = state else { throw fail("the state of \(object.className) is not a dict of attributes") }
                    object.attributes = attributes
                }
            case 0x51:                                                  // BINPERSID
                stack.append(try persistentLoad(try pop()))
            case 0x52:                                                  // REDUCE
                let arguments = try pop(), callable = try pop()
                guard case let .global(function) = callable, case let .tuple(values) = arguments else {
                    throw fail("REDUCE needs an allowed name and an argument tuple")
                }
                stack.append(try call(function, values))
            default:
                throw fail(String(format: "opcode 0x%02x is not supported in a state dict", opcode))
            }
        }
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
