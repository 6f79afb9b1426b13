import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchTensor

/// `segwatch serve`: the daemon.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch every camera of a configuration file, as a service.",
        discussion: """
            Loads the models of [engine] once and runs each enabled [[camera]] on them: the \
            newest frame of each camera is analyzed when the engine is free, at most the \
            camera's fps, the cameras taking turns so that each gets its share when the engine \
            is saturated. A camera that is offline or drops is retried with backoff, logged, \
            and never holds up the others; files and lavfi graphs are read at their own frame \
            rate, as a camera would send them. Events go to each camera's json_out (appended, \
            rotated) and events_socket. `segwatch config check FILE` checks the file first; \
            systemd/segwatch.toml documents every key.

            Under systemd (Type=notify) it says READY once every camera is set up, pings the \
            watchdog while the engine makes progress, and says STOPPING when it stops. SIGINT \
            or SIGTERM stops the inputs, finishes the frames in flight, ends the tracks and \
            flushes and closes every output; a second signal does not interrupt that. SIGHUP \
            reads the file again: cameras added or removed, a changed vocabulary, rate or \
            analysis setting taken from the camera's next frame without restarting its input \
            (its tracks end and new ones start), a changed input or output restarting that \
            camera; a file with a mistake changes nothing. [engine] changes need a restart.
            """)

    @Option(help: "The configuration file (TOML), e.g. /etc/segwatch/segwatch.toml.")
    var config: String

    func run() async throws {
        ShutdownSignal.shared.install(finalizing: true)
        // A reload asked for while the models load is not a reason to die (SIGHUP's default).
        signal(SIGHUP, SIG_IGN)
        try await runReporting {
            let config = try ServiceConfig.load(self.config)
            let sam = try ModelCache.standard.resolve(config.engine.sam, kind: .sam)
            let clip = try ModelCache.standard.resolve(config.engine.clip, kind: .clip)
            let models = try ModelSet(sam: sam, clip: clip, head: config.engine.head, engine: CPUEngine(threads: config.engine.threads))
            let service = try Service(config: config, models: models)
            ShutdownSignal.shared.onSignal { service.stop() }
            let hangUp = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
            hangUp.setEventHandler { service.requestReload() }
            hangUp.resume()
            defer { hangUp.cancel() }
            await service.run()
        }
    }
}
