import COpenBLAS
import CVulkan
import Testing

// Guards the pkg-config wiring of the system-library shims: each must import and link.
@Suite struct ShimLinkTests {
    @Test func openBLASMultipliesThroughCBLAS() {
        // [1 2; 3 4] x [5 6; 7 8] = [19 22; 43 50]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
        #expect(c == [19, 22, 43, 50])
    }

    @Test func vulkanLoaderReportsAnInstanceVersion() {
        var version: UInt32 = 0
        let result = vkEnumerateInstanceVersion(&version)
        #expect(result == VK_SUCCESS)
        #expect(version >= (1 << 22))  // at least Vulkan 1.0
    }
}
