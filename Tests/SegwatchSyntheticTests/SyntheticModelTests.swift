import Foundation
import SegwatchCLIP
import SegwatchCheckpoint
import SegwatchDINOv2
import SegwatchSAM
import SegwatchSynthetic
import SegwatchTensor
import SegwatchTestSupport
import Testing

// The benchmarks' random weights must have the published layouts: the loaders accept them
// strictly (every tensor used, every shape checked), and MobileSAM's names and shapes are
// those of the fixtures' mobile_sam.pt, which has the published checkpoint's.
@Suite struct SyntheticModelTests {
    let backend = CPUBackend(engine: CPUEngine(threads: 2))

    @Test func mobileSAMHasThePublishedNamesAndShapes() throws {
        let published = try StateDict.load(Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path)
        let synthetic = syntheticMobileSAM()
        #expect(Set(synthetic.map(\.name)) == Set(published.names))
        for (name, tensor) in synthetic {
            #expect(published.entries[name]?.shape == tensor.shape, "\(name)")
        }
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writeSyntheticMobileSAM(to: folder.path("mobile_sam.safetensors"))
        let sam = try Sam(contentsOf: folder.path("mobile_sam.safetensors"), backend: backend)
        #expect(sam.imageEncoder.summary.contains("TinyViT"))
    }

    @Test func openCLIPAndDINOv2FoldersLoad() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writeSyntheticOpenCLIP(to: folder.url.appendingPathComponent("clip"), vision: (64, 2, 32), text: (32, 2, 2), embedDim: 16)
        let clip = try CLIP.load(folder.path("clip"), backend: backend)
        #expect(clip.config.vision.width == 64 && clip.config.text.layers == 2 && clip.config.embedDim == 16)
        try writeSyntheticDINOv2(to: folder.url.appendingPathComponent("dino"), width: 48, layers: 2, heads: 3)
        let dino = try Dinov2Model.load(folder.path("dino"), backend: backend)
        #expect(dino.config.hiddenSize == 48 && dino.config.layers == 2)
    }
}
