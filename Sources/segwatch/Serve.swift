import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import Logging

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
            rotated), its events_socket and the HTTP API. `segwatch config check FILE` checks \
            the file first; systemd/segwatch.toml documents every key.

            The HTTP API ([http] listen, or --listen; loopback unless a token_file is given): \
            /healthz, /readyz, /metrics (Prometheus), /api/cameras, /api/events?since=N, \
            /api/events/stream (server-sent events), POST /api/reload.

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

    @Option(help: "Serve the HTTP API at HOST:PORT instead of [http] listen (127.0.0.1:8090 by default); any address but loopback needs [http] token_file.")
    var listen: String?

    func validate() throws {
        if let listen, HTTPConfig.parseListen(listen) == nil {
            throw ValidationError("--listen must be HOST:PORT (a port in 1...65535), e.g. 127.0.0.1:8090, not '\(listen)'")
        }
    }

    func run() async throws {
        ShutdownSignal.shared.install(finalizing: true)
        // A reload asked for while the models load is not a reason to die (SIGHUP's default).
        signal(SIGHUP, SIG_IGN)
        try await runReporting {
            var config = try ServiceConfig.load(self.config)
            if let listen, let (host, port) = HTTPConfig.parseListen(listen) {
                (config.http.host, config.http.port) = (host, port)
                if !config.http.isLoopback, config.http.tokenFile == nil {
                    throw ValidationError("--listen \(listen) is not a loopback address: give [http] token_file in \(self.config)")
                }
            }
            if try await Daemon.run(config: config, logger: Logger(label: "segwatch.serve")) { throw ExitCode(1) }
        }
    }
}
