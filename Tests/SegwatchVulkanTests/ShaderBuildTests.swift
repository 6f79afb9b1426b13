import Foundation
import Testing

@Suite("Vulkan shaders")
struct ShaderBuildTests {
    /// The SPIR-V built into segwatch (shaders.c) is what glsl/*.comp compiles to today: a
    /// shader edited without running make_shaders.py fails here, not on a user's GPU.
    @Test func theCommittedSPIRVIsCurrent() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/CVulkanShaders").standardized
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("shaders-\(UUID().uuidString).c")
        defer { try? FileManager.default.removeItem(at: fresh) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", folder.appendingPathComponent("make_shaders.py").path, fresh.path]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try #require(process.terminationStatus == 0, "make_shaders.py failed (glslc is Debian's glslc package, in .ci/install): \(message)")
        let committed = try Data(contentsOf: folder.appendingPathComponent("shaders.c"))
        #expect(try Data(contentsOf: fresh) == committed,
                "Sources/CVulkanShaders/shaders.c is stale: run Sources/CVulkanShaders/make_shaders.py and commit it")
    }
}
