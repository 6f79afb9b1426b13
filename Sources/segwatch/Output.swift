import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchMedia
import SegwatchSAM

/// Writes one line to stderr, prefixed with the program's name.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("segwatch: \(message)\n".utf8))
}

/// Encodes `value` as one line of JSON with sorted keys.
func jsonString(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Runs `body`; a media, checkpoint or model error becomes one clear line on stderr and exit
/// status 1.
func runReporting<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as MediaError {
        printError(error.description)
        throw ExitCode(1)
    } catch let error as CheckpointError {
        printError(error.description)
        throw ExitCode(1)
    } catch let error as SamError {
        printError(error.description)
        throw ExitCode(1)
    }
}
