import Foundation

/// Where segwatch keeps state between runs: `$SEGWATCH_STATE_DIR`, systemd's `$STATE_DIRECTORY`,
/// `$XDG_STATE_HOME/segwatch`, else `~/.local/state/segwatch`.
public func defaultStateDirectory() -> String {
    let environment = ProcessInfo.processInfo.environment
    if let folder = environment["SEGWATCH_STATE_DIR"], !folder.isEmpty { return folder }
    if let folder = environment["STATE_DIRECTORY"]?.split(separator: ":").first { return String(folder) }
    if let folder = environment["XDG_STATE_HOME"], !folder.isEmpty { return folder + "/segwatch" }
    return NSHomeDirectory() + "/.local/state/segwatch"
}
