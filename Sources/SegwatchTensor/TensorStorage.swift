import Foundation

/// Host memory holding float32 elements: owned, or borrowed from a memory-mapped file.
///
/// Ownership: a storage is written only by the code that created it, before any tensor
/// using it is shared; afterwards it is read-only. That is what makes it `@unchecked Sendable`.
/// A mapped storage keeps its `MappedFile` alive; the mapping is private (copy-on-write),
/// so nothing can ever write to the file.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: Owner

    private enum Owner {
        case pool(StoragePool, capacity: Int)
        case borrowed(AnyObject)
    }

    /// Storage of `count` elements, 64-byte aligned, from the buffer pool (by default the
    /// current engine's); zero-filled unless `zeroed` is false, for kernels that write every
    /// element anyway. The buffer goes back to the pool it came from.
    public init(count: Int, zeroed: Bool = true, pool: StoragePool = CPUEngine.current.storage) {
        let (raw, capacity) = pool.take(count: count)
        if zeroed { raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1)) }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        owner = .pool(pool, capacity: capacity)
    }

    /// Storage that borrows `count` floats at `pointer` inside memory `owner` keeps alive.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = .borrowed(owner)
    }

    /// Whether these are floats of a memory-mapped file (clean pages the kernel can drop and read again).
    var isMapped: Bool {
        if case let .borrowed(owner) = owner { return owner is MappedFile }
        return false
    }

    /// The storage of a packed linear weight.
    init(packed: PackedWeight) {
        pointer = packed.panels
        count = packed.count
        owner = .borrowed(packed)
    }

    /// The packed linear weight this storage is (`Backend.linearWeight`), if it is one: it then
    /// holds the packed panels only, and the plain values are gone.
    var packedWeight: PackedWeight? {
        if case let .borrowed(owner) = owner { return owner as? PackedWeight }
        return nil
    }

    deinit {
        if case let .pool(pool, capacity) = owner { pool.give(UnsafeMutableRawPointer(pointer), capacity: capacity) }
    }
}

/// A whole file mapped privately into memory (reads are zero-copy; writes never reach the file).
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeMutableRawPointer?
    public let count: Int

    public enum Failure: Error, Equatable {
        case open(String, errno: Int32)
        case map(String, errno: Int32)
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure.open(path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure.open(path, errno: errno) }
        count = Int(info.st_size)
        if count == 0 {
            bytes = nil
            return
        }
        let mapped = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else { throw Failure.map(path, errno: errno) }
        bytes = mapped
    }

    /// The file's bytes.
    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: count) }

    deinit {
        if let bytes { munmap(bytes, count) }
    }
}
