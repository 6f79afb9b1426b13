import Foundation
import SegwatchTensor
import SegwatchTestSupport
import Testing

// Guards the parity helper the SAM and CLIP suites rely on.
struct ParityTests {
    @Test func expectedValuesPassTheirOwnTolerance() throws {
        let fixture = try ParityFixture("mobile_sam")
        let key = "bikes_f100.image_embedding"
        #expect(fixture.tolerances[key]?.atol == 0.00015)
        let comparison = try fixture.check(fixture.tensor(key), key: key)
        #expect(comparison.passed, "\(comparison)")
    }

    // One element pushed just past the tolerance fails, and the report says where and by how much.
    @Test func oneElementOutsideIsReported() throws {
        let fixture = try ParityFixture("clip_hf")
        let key = "pooled_bus.image.embeds"
        let expected = try fixture.tensor(key).contiguous()
        let atol = try #require(fixture.tolerances[key]).atol
        var values = expected.toArray()
        values[17] += atol * 1.5
        let comparison = try fixture.check(Tensor(shape: expected.shape, values: values), key: key)
        #expect(!comparison.passed && comparison.failures == 1)
        #expect(comparison.worst == [0, 17])
        #expect(abs(comparison.maxAbsError - atol * 1.5) < atol * 0.01)
        #expect(comparison.description.contains("[0, 17]"))
    }

    @Test func wrongShapeAndNaNFail() throws {
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        #expect(!compare(a, a.reshaped([4]), atol: 1).passed)
        #expect(!compare(Tensor(shape: [2, 2], values: [1, .nan, 3, 4]), a, atol: 1).passed)
    }

    @Test func missingToleranceIsAnError() throws {
        let fixture = try ParityFixture("mobile_sam")
        #expect(throws: ParityFixture.Failure.self) { try fixture.check(Tensor(zeros: [1]), key: "bikes_f100.image_u8") }
    }
}
