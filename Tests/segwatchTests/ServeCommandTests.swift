import Foundation
import SegwatchTestSupport
import Synchronization
import Testing

/// `segwatch serve`: several cameras on one engine, an offline one among them, under a
/// stand-in for systemd's notify socket. One test at a time: each is a daemon using both cores.
@Suite(.serialized) struct ServeCommandTests {
    /// A datagram socket at `path` collecting what is sent to it, as systemd's NOTIFY_SOCKET.
    final class NotifyListener: @unchecked Sendable {
        let fd: Int32
        private let messages = Mutex<[(time: Date, text: String)]>([])

        init(path: String) {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { sun in
                for (i, byte) in path.utf8.enumerated() { sun[i] = byte }
            }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = recv(fd, &buffer, buffer.count, 0)
                    if count > 0 { messages.withLock { $0.append((Date(), String(decoding: buffer[..<count], as: UTF8.self))) } }
                    if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return }
                }
            }.start()
        }

        var received: [(time: Date, text: String)] { messages.withLock { $0 } }
    }

    /// The fixture models with a 3x3 generator grid at thresholds 0 (random weights keep masks
    /// only there), state and caches in `folder`.
    private func engineTable(_ folder: TemporaryFolder, background: Bool = true, sam: String = "mobile_sam/mobile_sam.pt") -> String {
        """
        [engine]
        sam = "\(Fixtures.root.appendingPathComponent(sam).path)"
        clip = "\(Fixtures.root.appendingPathComponent("clip_hf").path)"
        threads = 2
        background = \(background)
        state_dir = "\(folder.path("state"))"
        cache_dir = "\(folder.path("cache"))"

        [engine.generator]
        points_per_side = 3
        pred_iou_thresh = 0
        stability_score_thresh = 0

        """
    }

    /// `curl` on the API: status code and body.
    private func get(_ url: String, _ options: [String] = []) throws -> (status: Int, body: String) {
        let result = try runProcess("/usr/bin/curl", ["-s", "--max-time", "20", "-w", "\n%{http_code}"] + options + [url], timeout: 30)
        let text = result.output
        let split = text.lastIndex(of: "\n") ?? text.startIndex
        return (Int(text[split...].trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, String(text[..<split]).trimmingCharacters(in: .newlines))
    }

    /// Every endpoint of the running daemon through a real HTTP client.
    private func checkTheAPI(port: Int) throws {
        let base = "http://127.0.0.1:\(port)"
        let health = try get(base + "/healthz")
        #expect(health.status == 200 && health.body == "ok")
        let ready = try get(base + "/readyz")
        let readiness = try #require(try JSONSerialization.jsonObject(with: Data(ready.body.utf8)) as? [String: Any])
        let states = try #require(readiness["cameras"] as? [String: String])
        #expect(ready.status == 200 && readiness["ready"] as? Bool == true)
        #expect(states["a"] == "connected" && states["b"] == "connected" && ["connecting", "reconnecting", "disconnected"].contains(states["dead"]))
        let cameras = try #require(try JSONSerialization.jsonObject(with: Data(try get(base + "/api/cameras").body.utf8)) as? [[String: Any]])
        #expect(cameras.map { $0["name"] as? String } == ["a", "b", "dead"])
        #expect((cameras[0]["analyzed"] as? Int ?? 0) > 0 && cameras[2]["analyzed"] as? Int == 0 && (cameras[0]["dropped"] as? Int ?? 0) > 0)

        // The metrics: what promtool accepts, with per-camera series labeled camera="NAME".
        let metrics = try get(base + "/metrics")
        #expect(metrics.status == 200)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try (metrics.body + "\n").write(toFile: folder.path("metrics.txt"), atomically: true, encoding: .utf8)
        let promtool = try runProcess("/bin/sh", ["-c", "promtool check metrics < \"$0\"", folder.path("metrics.txt")], timeout: 60)
        #expect(promtool.status == 0, "\(promtool.output) \(promtool.errorOutput)")
        #expect(metrics.body.contains("segwatch_camera_up{camera=\"dead\"} 0") && metrics.body.contains("segwatch_camera_up{camera=\"a\"} 1"))
        let analyzedA = metrics.body.split(separator: "\n").first { $0.hasPrefix("segwatch_frames_analyzed_total{camera=\"a\"}") }
        #expect((analyzedA?.split(separator: " ").last.flatMap { Double($0) } ?? 0) > 0, "\(metrics.body.prefix(400))")
        for name in ["segwatch_frames_decoded_total", "segwatch_frames_dropped_total", "segwatch_analyzed_fps", "segwatch_stage_seconds_bucket",
                     "segwatch_keyframes_total", "segwatch_live_tracks", "segwatch_reconnects_total", "segwatch_last_frame_age_seconds",
                     "segwatch_event_latency_seconds_bucket", "segwatch_engine_queue_depth", "segwatch_resident_memory_bytes",
                     "segwatch_tensor_pool_bytes"] {
            #expect(metrics.body.contains(name), "\(name) is missing")
        }

        // Events: the kept ones by number, and the stream as server-sent events.
        let recent = try #require(try JSONSerialization.jsonObject(with: Data(try get(base + "/api/events?since=0").body.utf8)) as? [String: Any])
        let kept = try #require(recent["events"] as? [[String: Any]])
        #expect(!kept.isEmpty && (recent["next"] as? Int ?? 0) == kept.count + 1)
        let stream = try get(base + "/api/events/stream", ["-N", "--max-time", "6"])
        let data = stream.body.split(separator: "\n").filter { $0.hasPrefix("data: ") }
        #expect(!data.isEmpty, "\(stream.body.prefix(300))")
        for line in data {
            let event = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
            #expect(["a", "b", "dead"].contains(event?["source"] as? String ?? ""))
        }
        #expect(try get(base + "/api/reload", ["-X", "POST"]).status == 202)

        // `segwatch tail --url` follows the same stream, filtered.
        let folderTail = try TemporaryFolder()
        defer { folderTail.remove() }
        let tail = try BackgroundProcess(segwatch, ["tail", "--url", base, "--type", "frame"], stdout: folderTail.path("out"),
                                         stderr: folderTail.path("err"))
        defer { tail.signal(SIGKILL) }
        #expect(eventually(60, every: 0.2) { tail.output.split(separator: "\n").count >= 2 }, "\(tail.errorOutput)")
        tail.signal(SIGTERM)
        #expect(tail.wait(timeout: 30) == 0)
        for line in tail.output.split(separator: "\n") {
            let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(event?["type"] as? String == "frame" && ["a", "b"].contains(event?["source"] as? String ?? ""), "\(line.prefix(100))")
        }
    }

    @Test func camerasShareTheEngineAndAnOfflineOneHoldsNothingUp() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let camera = { (name: String, input: String, extra: String) in
            """

            [[camera]]
            name = "\(name)"
            input = "\(input)"
            fps = 0
            labels = ["car", "person"]
            json_out = "\(folder.path("\(name).jsonl"))"
            discovery_grid = 3
            tracked_min_iou = 0
            keyframe_below_iou = 0
            \(extra)
            """
        }
        let port = freePort()
        let video = "video_out = \"\(folder.path("b.mp4"))\"\nvideo_segment_minutes = 0.05"
        let config = engineTable(folder) + "[http]\nlisten = \"127.0.0.1:\(port)\"\n" + camera("a", "lavfi:testsrc=size=320x240:rate=25", "") + camera("b", "lavfi:testsrc2=size=320x240:rate=25", video)
            + camera("dead", "rtsp://127.0.0.1:\(freePort())/none", "open_timeout = 1")
        try config.write(toFile: folder.path("s.toml"), atomically: true, encoding: .utf8)
        let notify = NotifyListener(path: folder.path("notify"))
        defer { close(notify.fd) }
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = folder.path("notify")
        environment["WATCHDOG_USEC"] = "4000000"
        let serve = try BackgroundProcess(segwatch, ["serve", "--config", folder.path("s.toml")], stdout: folder.path("stdout"),
                                          stderr: folder.path("stderr"), environment: environment)
        defer { serve.signal(SIGKILL) }
        func frames(_ name: String) -> Int { jsonLines(folder.path("\(name).jsonl")).count { $0["type"] as? String == "frame" } }
        #expect(eventually(240, every: 0.2) { frames("a") >= 4 && frames("b") >= 4 }, "\(serve.errorOutput)")
        #expect(eventually(60, every: 0.2) { notify.received.count { $0.text == "WATCHDOG=1" } >= 3 })
        try checkTheAPI(port: port)
        serve.signal(SIGTERM)
        #expect(serve.wait(timeout: 120) == 0, "\(serve.errorOutput)")

        // READY first, the watchdog every 2 s (half of WatchdogSec=4: an analysis is far shorter),
        // then STOPPING
        // (the watchdog goes on while the outputs are finished).
        let messages = notify.received
        #expect(messages.first?.text.hasPrefix("READY=1\nSTATUS=3 cameras") == true, "\(messages.map(\.text))")
        let stopping = try #require(messages.firstIndex { $0.text.hasPrefix("STOPPING=1") }, "\(messages.map(\.text))")
        #expect(messages[..<stopping].count { $0.text == "WATCHDOG=1" } >= 2)
        let pings = messages.filter { $0.text == "WATCHDOG=1" }.map(\.time)
        let gaps = zip(pings, pings.dropFirst()).map { $1.timeIntervalSince($0) }
        #expect(!gaps.isEmpty && gaps.allSatisfy { $0 > 1.5 && $0 < 3.9 }, "\(gaps)")

        // Both live cameras analyzed about as often; every line is theirs and valid; tracks ended.
        let schema = try JSONSchema(contentsOf: RunCommandTests.schema)
        for name in ["a", "b"] {
            let events = jsonLines(folder.path("\(name).jsonl"))
            #expect(events.allSatisfy { $0["source"] as? String == name })
            let text = try String(contentsOfFile: folder.path("\(name).jsonl"), encoding: .utf8)
            for line in text.split(separator: "\n") { #expect(schema.violations(of: Data(line.utf8)).isEmpty, "\(line.prefix(200))") }
            let starts = events.count { $0["event"] as? String == "start" }, ends = events.count { $0["event"] as? String == "end" }
            #expect(starts > 0 && starts == ends, "\(name): \(starts) starts, \(ends) ends")
        }
        let (a, b) = (Double(frames("a")), Double(frames("b")))
        #expect(max(a, b) / min(a, b) <= 1.5, "a \(a), b \(b)")
        // b's annotated video: segments of 3 s named by their start, each one playable.
        let segments = try FileManager.default.contentsOfDirectory(atPath: folder.path("")).filter { $0.hasPrefix("b-") && $0.hasSuffix(".mp4") }
        #expect(segments.count >= 2, "\(segments)")
        for name in segments {
            let probe = try runProcess(segwatch, ["probe", folder.path(name), "--count-frames", "--json"], timeout: 60)
            #expect(probe.status == 0 && probe.output.contains("\"frames\""), "\(name): \(probe.errorOutput)")
        }
        // The offline camera: retried and reported, never analyzed, never in the way.
        let dead = jsonLines(folder.path("dead.jsonl"))
        #expect(dead.allSatisfy { $0["type"] as? String == "source" } && dead.contains { $0["state"] as? String == "reconnecting" })
        #expect(serve.errorOutput.contains("dead: reconnecting"), "\(serve.errorOutput)")
    }

    // SIGHUP: a new vocabulary is taken without restarting the camera's input, a camera is
    // added and another removed, and a file with a mistake changes nothing.
    @Test func aReloadAppliesTheNewConfigCameraByCamera() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        func camera(_ name: String, _ input: String, _ labels: String) -> String {
            """

            [[camera]]
            name = "\(name)"
            input = "\(input)"
            fps = 0
            labels = \(labels)
            json_out = "\(folder.path("\(name).jsonl"))"
            discovery_grid = 3
            tracked_min_iou = 0
            keyframe_below_iou = 0
            """
        }
        let engine = engineTable(folder, background: false)
        let configPath = folder.path("s.toml")
        try (engine + camera("a", "lavfi:testsrc=size=320x240:rate=25", "[\"car\", \"bus\"]")
             + camera("b", "lavfi:testsrc2=size=320x240:rate=25", "[\"tree\"]")).write(toFile: configPath, atomically: true, encoding: .utf8)
        let serve = try BackgroundProcess(segwatch, ["serve", "--config", configPath], stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        defer { serve.signal(SIGKILL) }
        func events(_ name: String) -> [[String: Any]] { jsonLines(folder.path("\(name).jsonl")) }
        func frames(_ name: String) -> [[String: Any]] { events(name).filter { $0["type"] as? String == "frame" } }
        #expect(eventually(240, every: 0.2) { frames("a").count >= 2 && frames("b").count >= 2 }, "\(serve.errorOutput)")

        // A mistake first: nothing changes.
        try (engine + "fps = true\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        #expect(eventually(30, every: 0.2) { serve.errorOutput.contains("the running configuration stays") }, "\(serve.errorOutput)")

        try (engine + camera("a", "lavfi:testsrc=size=320x240:rate=25", "[\"dog\", \"cat\"]")
             + camera("c", "lavfi:testsrc=size=160x120:rate=25", "[\"bird\"]")).write(toFile: configPath, atomically: true, encoding: .utf8)
        let before = frames("a").count
        serve.signal(SIGHUP)
        #expect(eventually(120, every: 0.2) {
            frames("a").dropFirst(before + 1).contains { !($0["segments"] as! [[String: Any]]).isEmpty } && frames("c").count >= 2
        }, "\(serve.errorOutput)")
        let bFrames = frames("b").count
        Thread.sleep(forTimeInterval: 2)
        #expect(frames("b").count == bFrames, "b goes on after its removal")
        serve.signal(SIGTERM)
        #expect(serve.wait(timeout: 120) == 0, "\(serve.errorOutput)")

        // a: old labels before, new ones after, tracks ended at the switch; its input never reconnected.
        let a = events("a")
        let segments = a.filter { $0["type"] as? String == "frame" }.map { ($0["segments"] as! [[String: Any]]).map { $0["label"] as! String } }
        let switchAt = try #require(segments.firstIndex { $0.contains { ["dog", "cat"].contains($0) } })
        #expect(segments[..<switchAt].allSatisfy { $0.allSatisfy { ["car", "bus", "unknown"].contains($0) } }, "\(segments)")
        #expect(segments[switchAt...].allSatisfy { $0.allSatisfy { ["dog", "cat", "unknown"].contains($0) } }, "\(segments)")
        #expect(a.filter { $0["type"] as? String == "source" }.count { $0["state"] as? String == "connected" } == 1)
        let starts = a.count { $0["event"] as? String == "start" }, ends = a.count { $0["event"] as? String == "end" }
        #expect(starts > 0 && starts == ends)
        // b: stopped with its tracks ended; c: started.
        let b = events("b")
        #expect(b.count { $0["event"] as? String == "start" } == b.count { $0["event"] as? String == "end" })
        #expect(events("c").allSatisfy { $0["source"] as? String == "c" } && frames("c").count >= 2)
    }

    // The daemon with a [store]: a camera's tracks go to the store, a new vocabulary on reload
    // starts a new run there, and the API searches it as `segwatch search` does (the same
    // tracks, scores and order), gives a track and its thumbnail, and names what it cannot do.
    @Test func theStoreIsSearchedThroughTheAPI() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let port = freePort(), store = folder.path("tracks.sqlite")
        func camera(_ labels: String) -> String {
            """

            [[camera]]
            name = "a"
            input = "lavfi:testsrc=size=320x240:rate=25"
            fps = 0
            labels = \(labels)
            json_out = "\(folder.path("a.jsonl"))"
            discovery_grid = 3
            tracked_min_iou = 0
            keyframe_below_iou = 0
            """
        }
        let head = engineTable(folder, background: false) + "[http]\nlisten = \"127.0.0.1:\(port)\"\n\n[store]\nurl = \"\(store)\"\nretain_days = 30\n"
        let configPath = folder.path("s.toml")
        try (head + camera("[\"car\", \"bus\"]")).write(toFile: configPath, atomically: true, encoding: .utf8)
        let serve = try BackgroundProcess(segwatch, ["serve", "--config", configPath], stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        defer { serve.signal(SIGKILL) }
        func frames() -> [[String: Any]] { jsonLines(folder.path("a.jsonl")).filter { $0["type"] as? String == "frame" } }
        #expect(eventually(240, every: 0.2) { frames().count >= 4 }, "\(serve.errorOutput)")
        let base = "http://127.0.0.1:\(port)"
        let cameras = try JSONSerialization.jsonObject(with: Data(try get(base + "/api/cameras").body.utf8)) as? [[String: Any]]
        #expect(cameras?.first?["store_failed_writes"] as? Int == 0, "\(String(describing: cameras))")

        // A new vocabulary, then no camera at all: the store holds still for the comparison.
        try (head + camera("[\"dog\", \"cat\"]")).write(toFile: configPath, atomically: true, encoding: .utf8)
        let before = frames().count
        serve.signal(SIGHUP)
        #expect(eventually(120, every: 0.2) { frames().count >= before + 3 }, "\(serve.errorOutput)")
        try head.write(toFile: configPath, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        #expect(eventually(120, every: 0.2) { (try? get(base + "/api/cameras").body) == "[]" }, "\(serve.errorOutput)")

        let runs = try runProcess("/usr/bin/env", ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                                                   + "print(*c.execute('select count(*), count(distinct vocabulary_digest), count(ended) from runs').fetchone())",
                                                   store], timeout: 30)
        #expect(runs.output.trimmingCharacters(in: .whitespacesAndNewlines) == "2 2 2", "\(runs.output) \(runs.errorOutput)")
        let started = Set(jsonLines(folder.path("a.jsonl")).filter { $0["event"] as? String == "start" }.map { $0["track"] as! Int })
        let api = try get(base + "/api/search?q=a%20bus&limit=1000")
        #expect(api.status == 200, "\(api.body)")
        let response = try #require(try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any])
        let results = try #require(response["results"] as? [[String: Any]])
        #expect(response["searched"] as? Int == started.count && Set(results.map { $0["track"] as! Int }) == started)
        let cli = try runProcess(segwatch, ["search", "a bus", "--store", store, "--limit", "1000", "--json", "--thumbnails", folder.path("th")],
                                 timeout: 120)
        let local = try #require(try JSONSerialization.jsonObject(with: Data(cli.output.utf8)) as? [[String: Any]], "\(cli.errorOutput)")
        #expect(local.map { $0["track"] as! Int } == results.map { $0["track"] as! Int })
        #expect(zip(local, results).allSatisfy { abs(($0["score"] as! Double) - ($1["score"] as! Double)) < 1e-12 })
        // A form's encoding (+ for a space, as the page sends it) is the same query; %2B is a plus.
        #expect(try get(base + "/api/search?q=a+bus&limit=1000").body == api.body)
        #expect(try get(base + "/api/search?q=a%2Bbus&limit=1000").body != api.body)

        let first = try #require(results.first)
        let track = try get(base + "/api/tracks/\(first["id"] as! Int)")
        #expect(track.status == 200 && track.body.contains("\"embedding\"") && track.body.contains("\"label_history\""), "\(track.body.prefix(200))")
        let thumbnail = try runProcess("/usr/bin/curl", ["-s", "--max-time", "20", base + (first["thumbnail"] as! String)], timeout: 30)
        #expect(thumbnail.stdout.prefix(2) == Data([0xFF, 0xD8]), "\(first)")
        #expect(try get(base + "/api/tracks/99999999").status == 404)
        #expect(try get(base + "/api/search").status == 400)

        // The page in a real browser: Debian's headless Chromium opens it with a query, the page
        // runs it, and the results are in the DOM, one card per track, best first; a screenshot
        // is kept where the test prints.
        let chromium = try #require(which("chromium"), "Chromium is installed by .ci/install")
        let page = base + "/?q=a%20bus"
        let browser = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=10000",
                       "--user-data-dir=\(folder.path("chromium"))"]
        let dom = try runProcess(chromium, browser + ["--dump-dom", page], timeout: 120)
        let cards = dom.output.components(separatedBy: "class=\"result\"").dropFirst().compactMap { card in
            card.range(of: #"data-track="(\d+)""#, options: .regularExpression).map { Int(card[$0].dropFirst(12).dropLast())! }
        }
        #expect(cards == Array(results.prefix(50).map { $0["track"] as! Int }), "\(dom.output.suffix(2000)) \(dom.errorOutput.suffix(500))")
        #expect(dom.output.contains("\(min(results.count, 50)) of \(started.count) tracks"))
        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-search-page.png").path
        let shot = try runProcess(chromium, browser + ["--window-size=1200,800", "--screenshot=\(screenshot)", page], timeout: 120)
        #expect(shot.status == 0 && FileManager.default.fileExists(atPath: screenshot), "\(shot.errorOutput.suffix(500))")
        print("search page screenshot: \(screenshot)")
        #expect(try get(base + "/api/search?q=x&since=yesterday").status == 400)
        serve.signal(SIGTERM)
        #expect(serve.wait(timeout: 120) == 0, "\(serve.errorOutput)")
    }

    // Two daemons ("hosts") write to one PostgreSQL store. Its database goes away: a daemon
    // counts the writes that failed, in /api/cameras and /metrics, keeps the frames it could not
    // write, and goes on analyzing and writing events; back, it writes what it kept, so that
    // every track of its events is stored. Each daemon's search, and the command line's, spans
    // both hosts' cameras.
    @Test func aFleetSharesOnePostgresStore() throws {
        let folder = try TemporaryFolder()
        let store = try TestPostgres.newDatabase()
        defer { folder.remove(); TestPostgres.dropDatabase(store) }
        let database = try #require(URLComponents(string: store)?.path.dropFirst())
        let hosts = try ["north", "south"].map { name -> (name: String, port: Int, serve: BackgroundProcess) in
            let port = freePort()
            let config = engineTable(folder, background: false) + """
                [http]
                listen = "127.0.0.1:\(port)"

                [store]
                url = "\(store)"

                [[camera]]
                name = "\(name)"
                input = "lavfi:\(name == "north" ? "testsrc" : "testsrc2")=size=320x240:rate=25"
                fps = 0
                labels = ["car", "bus"]
                json_out = "\(folder.path("\(name).jsonl"))"
                discovery_grid = 3
                tracked_min_iou = 0
                keyframe_below_iou = 0
                """
            try config.write(toFile: folder.path("\(name).toml"), atomically: true, encoding: .utf8)
            let serve = try BackgroundProcess(segwatch, ["serve", "--config", folder.path("\(name).toml")],
                                              stdout: folder.path("\(name).out"), stderr: folder.path("\(name).err"))
            return (name, port, serve)
        }
        defer { for host in hosts { host.serve.signal(SIGKILL) } }
        func frames(_ name: String) -> Int { jsonLines(folder.path("\(name).jsonl")).count { $0["type"] as? String == "frame" } }
        func camera(_ port: Int) -> [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(try get("http://127.0.0.1:\(port)/api/cameras").body.utf8)) as? [[String: Any]])?.first
        }
        #expect(eventually(240, every: 0.2) { hosts.allSatisfy { frames($0.name) >= 3 } }, "\(hosts[0].serve.errorOutput)")
        #expect(hosts.allSatisfy { camera($0.port)?["store_failed_writes"] as? Int == 0 })

        // The database goes away.
        let server = try TestPostgres.serverURL()
        try TestPostgres.psql(server, "ALTER DATABASE \(database) ALLOW_CONNECTIONS false")
        try TestPostgres.psql(server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'")
        let north = hosts[0]
        #expect(eventually(120, every: 0.2) { (camera(north.port)?["store_failed_writes"] as? Int ?? 0) >= 2 }, "\(north.serve.errorOutput)")
        let failing = try #require(camera(north.port))
        #expect((failing["store_error"] as? String)?.contains(String(database)) == true, "\(failing)")
        #expect((failing["store_buffered_frames"] as? Int ?? 0) >= 1, "\(failing)")
        let metrics = try get("http://127.0.0.1:\(north.port)/metrics").body
        #expect(metrics.contains("segwatch_store_failed_writes_total{camera=\"north\"}"), "\(metrics.prefix(500))")
        let during = frames("north")
        #expect(eventually(120, every: 0.2) { frames("north") >= during + 2 }, "analysis stopped with the store")

        // Back: what was kept is written (nothing buffered any more), and the store is written
        // again (the failures stop growing).
        try TestPostgres.psql(server, "ALTER DATABASE \(database) ALLOW_CONNECTIONS true")
        #expect(eventually(120, every: 0.2) { camera(north.port)?["store_buffered_frames"] as? Int == 0 && frames("north") > during + 2 },
                "\(String(describing: camera(north.port)))")
        let settled = camera(north.port)?["store_failed_writes"] as? Int ?? -1
        let after = frames("north")
        #expect(eventually(120, every: 0.2) { frames("north") >= after + 2 })
        let recovered = try #require(camera(north.port))
        #expect(recovered["store_failed_writes"] as? Int == settled && recovered["store_buffered_frames"] as? Int == 0
                && recovered["store_dropped_frames"] as? Int == 0, "\(recovered)")

        // Search spans the fleet: each daemon's API and the command line find both cameras' tracks.
        for host in hosts {
            let api = try get("http://127.0.0.1:\(host.port)/api/search?q=a%20bus&limit=1000")
            let results = (try? JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any])?["results"] as? [[String: Any]] ?? []
            #expect(Set(results.compactMap { $0["camera"] as? String }) == ["north", "south"], "\(host.name): \(api.body.prefix(300))")
        }
        for host in hosts {
            host.serve.signal(SIGTERM)
            #expect(host.serve.wait(timeout: 120) == 0, "\(host.serve.errorOutput)")
        }
        let cli = try runProcess(segwatch, ["search", "a bus", "--store", store, "--limit", "1000", "--json"], timeout: 120)
        let local = (try? JSONSerialization.jsonObject(with: Data(cli.output.utf8)) as? [[String: Any]]) ?? []
        #expect(Set(local.compactMap { $0["camera"] as? String }) == ["north", "south"], "\(cli.errorOutput)")
        for host in hosts {
            let started = Set(jsonLines(folder.path("\(host.name).jsonl")).filter { $0["event"] as? String == "start" }.map { $0["track"] as! Int })
            let stored = Set(local.filter { $0["camera"] as? String == host.name }.map { $0["track"] as! Int })
            #expect(stored == started, "\(host.name): \(started.subtracting(stored)) not stored")
        }
    }

    // Any address but loopback needs the bearer token: 401 without it, 200 with it. No cameras:
    // the API alone, with --listen over the file's [http] listen.
    @Test func aNonLoopbackAddressNeedsTheToken() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let token = "s3cret-token-0123456789"
        try token.write(toFile: folder.path("token"), atomically: true, encoding: .utf8)
        try (engineTable(folder) + "[http]\ntoken_file = \"\(folder.path("token"))\"\n").write(toFile: folder.path("s.toml"), atomically: true, encoding: .utf8)
        let port = freePort()
        let serve = try BackgroundProcess(segwatch, ["serve", "--config", folder.path("s.toml"), "--listen", "0.0.0.0:\(port)"],
                                          stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        defer { serve.signal(SIGKILL) }
        let url = "http://127.0.0.1:\(port)"
        #expect(eventually(60, every: 0.2) { (try? get(url + "/healthz").status) == 401 }, "\(serve.errorOutput)")
        for path in ["/healthz", "/readyz", "/metrics", "/api/cameras", "/api/events?since=0"] {
            #expect(try get(url + path).status == 401, "\(path)")
            #expect(try get(url + path, ["-H", "Authorization: Bearer wrong-token-0123456789"]).status == 401, "\(path)")
        }
        #expect(eventually(60, every: 0.2) { (try? get(url + "/readyz", ["-H", "Authorization: Bearer \(token)"]).status) == 200 })
        #expect(try get(url + "/healthz", ["-H", "Authorization: Bearer \(token)"]).body == "ok")
        // tail without the token is refused with a clear error, not a silent wait.
        let refusedTail = try runProcess(segwatch, ["tail", "--url", url], timeout: 30)
        #expect(refusedTail.status == 1 && refusedTail.errorOutput.contains("bearer token"), "\(refusedTail.errorOutput)")
        serve.signal(SIGTERM)
        #expect(serve.wait(timeout: 60) == 0, "\(serve.errorOutput)")
        // Without a token file, a non-loopback --listen is refused before anything starts.
        try engineTable(folder).write(toFile: folder.path("open.toml"), atomically: true, encoding: .utf8)
        let refused = try runProcess(segwatch, ["serve", "--config", folder.path("open.toml"), "--listen", "0.0.0.0:\(port)"], timeout: 60)
        #expect(refused.status != 0 && refused.errorOutput.contains("token_file"), "\(refused.errorOutput)")
    }

    // Guards isolation across a camera's failure: with two RTSP cameras and a lavfi one sharing
    // the engine, killing one server lowers neither other camera's analysis rate (they take its
    // share); the dead camera shows as down in /readyz and /metrics, and analyzes again once
    // its server is back on the same port.
    @Test func aDeadServerSlowsNoOtherCameraAndItsCameraResumes() throws {
        try #require(RTSPServer.isAvailable, "Debian's python3-gi and GStreamer's RTSP server are installed by .ci/install")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (port1, port2, apiPort) = (freePort(), freePort(), freePort())
        var server1 = try RTSPServer(file: Fixtures.media("bigbuckbunny.mp4"), port: port1)
        let server2 = try RTSPServer(file: Fixtures.media("bigbuckbunny.mp4"), port: port2)
        defer { server1.stop(); server2.stop() }
        var config = engineTable(folder, sam: "sam_vit/sam_vit_tiny.pth") + "[http]\nlisten = \"127.0.0.1:\(apiPort)\"\n"
        for (name, input) in [("r1", server1.url), ("r2", server2.url), ("l", "lavfi:testsrc=size=320x240:rate=25")] {
            config += """

                [[camera]]
                name = "\(name)"
                input = "\(input)"
                fps = 0
                labels = ["car", "person"]
                discovery_grid = 3
                tracked_min_iou = 0
                keyframe_below_iou = 0

                """
        }
        try config.write(toFile: folder.path("s.toml"), atomically: true, encoding: .utf8)
        let serve = try BackgroundProcess(segwatch, ["serve", "--config", folder.path("s.toml")], stdout: folder.path("stdout"),
                                          stderr: folder.path("stderr"))
        defer { serve.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(apiPort)"
        func cameras() -> [String: (state: String, analyzed: Int)] {
            guard let body = try? get(base + "/api/cameras").body,
                  let list = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else { return [:] }
            return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as! String, ($0["state"] as! String, $0["analyzed"] as! Int)) })
        }
        /// Each camera's analyzed frames a second over `seconds`.
        func rates(over seconds: Double) -> [String: Double] {
            let (start, before) = (Date(), cameras())
            Thread.sleep(forTimeInterval: seconds)
            let (after, elapsed) = (cameras(), Date().timeIntervalSince(start))
            return after.mapValues { Double($0.analyzed) / elapsed }.merging(before.mapValues { -Double($0.analyzed) / elapsed }, uniquingKeysWith: +)
        }
        #expect(eventually(240, every: 0.5) { cameras().values.count { $0.analyzed >= 2 } == 3 }, "\(serve.errorOutput)")
        let before = rates(over: 25)

        server1.stop()
        #expect(eventually(30, every: 0.2) { cameras()["r1"]?.state == "reconnecting" }, "\(cameras())")
        // The frames the decoder still held when the connection ended are analyzed first.
        var last = (count: -1, since: Date())
        #expect(eventually(60, every: 0.5) {
            let count = cameras()["r1"]?.analyzed ?? -1
            if count != last.count { last = (count, Date()) }
            return Date().timeIntervalSince(last.since) >= 5
        })
        let down = rates(over: 25)
        for name in ["r2", "l"] {
            #expect(down[name]! >= 0.9 * before[name]!, "\(name): \(before[name]!) analyzed a second before, \(down[name]!) with r1 down")
        }
        #expect(down["r1"]! == 0)
        print("ServeCommandTests: analyzed a second before \(before), with r1 down \(down)")
        let ready = try get(base + "/readyz")
        // (r2 reconnects briefly at each loop of its server's file: the lavfi camera is the steady one.)
        #expect(ready.status == 200 && !ready.body.contains(#""r1":"connected""#) && ready.body.contains(#""l":"connected""#), "\(ready.body)")
        let metrics = try get(base + "/metrics").body
        #expect(metrics.contains(#"segwatch_camera_up{camera="r1"} 0"#) && metrics.contains(#"segwatch_camera_up{camera="l"} 1"#))

        server1 = try RTSPServer(file: Fixtures.media("bigbuckbunny.mp4"), port: port1)
        let analyzed = cameras()["r1"]!.analyzed
        #expect(eventually(90, every: 0.5) { (cameras()["r1"]?.analyzed ?? 0) >= analyzed + 2 }, "\(cameras())")
        // (The server ends its stream at each loop of the file, and the camera reconnects.)
        #expect(eventually(30, every: 0.2) { (try? get(base + "/metrics").body.contains(#"segwatch_camera_up{camera="r1"} 1"#)) == true })
        serve.signal(SIGTERM)
        #expect(serve.wait(timeout: 120) == 0, "\(serve.errorOutput)")
        #expect(serve.errorOutput.contains("r1: reconnecting") && serve.errorOutput.contains("r1: connected"))
    }
}
