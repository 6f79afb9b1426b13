import Foundation
@testable import SegwatchService
import SegwatchTestSupport
import Testing

/// Track ids never repeat for a camera, across restarts and crashes.
struct TrackNumberingTests {
    @Test func idsContinueAcrossRestartsAndCrashes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let state = URL(fileURLWithPath: folder.path("state"))
        var seen = Set<Int>()
        for _ in 0..<3 {
            // Each instance is a restart; none is closed, as after a crash.
            let ids = try PersistentTrackIDs(stateDirectory: state, camera: "cam 1", block: 4)
            for _ in 0..<6 {
                let id = ids.next()
                #expect(id >= 1 && seen.insert(id).inserted, "\(id) repeated")
            }
        }
        // Another camera counts on its own.
        #expect(try PersistentTrackIDs(stateDirectory: state, camera: "cam2", block: 4).next() == 1)
    }

    @Test func aDamagedCounterIsNamed() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let state = URL(fileURLWithPath: folder.path("state"))
        let ids = try PersistentTrackIDs(stateDirectory: state, camera: "cam1")
        try "twelve\n".write(to: ids.file, atomically: true, encoding: .utf8)
        #expect { try PersistentTrackIDs(stateDirectory: state, camera: "cam1") } throws: {
            "\($0)".contains(ids.file.path) && "\($0)".contains("'twelve'")
        }
    }

    @Test func cameraNamesMakeDistinctSafeFileNames() {
        let names = ["cam1", "cam/1", "cam_1", "../etc", ".", "", "カメラ"].map(PersistentTrackIDs.fileName)
        #expect(Set(names).count == names.count, "\(names)")
        #expect(names.allSatisfy { !$0.contains("/") && !$0.hasPrefix(".") && !$0.isEmpty }, "\(names)")
    }

    @Test func clockSeededIDsStartPastThePreviousRun() {
        let earlier = ClockSeededTrackIDs(now: Date(timeIntervalSince1970: 1_000_000))
        let ids = (0..<500).map { _ in earlier.next() }
        let later = ClockSeededTrackIDs(now: Date(timeIntervalSince1970: 1_000_001))
        #expect(later.next() > ids.max()!)
    }
}
