// The profile loader: the input is a profile file. A rejected file gets an error that names the file, a
// line inside it and the problem; an accepted one names a known engine, loads the same way twice, and its
// engine must take any bytes without trapping (the input itself is fed to a session in 20-byte chunks).
//
// fuzz-seed-files: DeviceProfiles/*/*.json Tests/Fixtures/profiles/*/*.json
// fuzz-options: -max_len=8192
// fuzz-dict: "{"
// fuzz-dict: "}"
// fuzz-dict: "["
// fuzz-dict: "]"
// fuzz-dict: "\":"
// fuzz-dict: "\""
// fuzz-dict: "true"
// fuzz-dict: "null"
// fuzz-dict: "-1"
// fuzz-dict: "1e400"
// fuzz-dict: "\\u0000"

import FuzzSupport
import ProfileCatalog
import ProfileEngine
import VitalModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let file = "fuzz/profile.json"
    let first = Result { () throws(ProfileError) in try ProfileLoader.load(bytes: bytes, file: file) }
    let second = Result { () throws(ProfileError) in try ProfileLoader.load(bytes: bytes, file: file) }

    switch (first, second) {
    case (.failure(let error), .failure(let again)):
        require(error == again, "the same file failed differently: \(error) / \(again)")
        require(error.file == file && !error.problem.isEmpty, "an error without file or problem: \(error)")
        if let location = error.location {
            let lines = bytes.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            require(location.line >= 1 && location.line <= lines && location.column >= 1,
                    "error at \(location), outside the \(lines)-line input: \(error)")
        }
    case (.success(let profile), .success(let again)):
        require(profile.id == again.id && profile.engine.name == again.engine.name, "the same file loaded differently")
        require(profile.file == file, "profile.file \(profile.file)")
        require(ProfileLoader.engines.contains(profile.engine.name), "unknown engine \(profile.engine.name)")
        drive(profile, bytes)
    default:
        require(false, "the same file loaded once and failed once")
    }
    return 0
}

/// Runs a session of the profile's engine over `bytes`; readings and problems must be well formed.
private func drive(_ profile: DeviceProfile, _ bytes: [UInt8]) {
    var session = profile.engine.makeSession(device: fuzzContext.device, profileID: profile.id)
    var events = session.start(at: fuzzContext.receivedAt)
    let channel = profile.engine.inputs.first
    var offset = 0
    while offset < bytes.count {
        let end = min(offset + 20, bytes.count)
        events += session.receive(Array(bytes[offset..<end]), channel: channel, at: fuzzContext.receivedAt)
        offset = end
    }
    if let wait = session.timeoutMilliseconds {
        require(wait >= 0, "negative timeout \(wait)")
        events += session.timeout(at: fuzzContext.receivedAt)
    }
    for event in events {
        switch event {
        case .reading(let reading):
            requireReadingShape(reading)
            require(reading.source.profileID == profile.id, "a reading names profile \(reading.source.profileID)")
        case .problem(let error): requireDecodeErrorShape(error)
        case .send, .finished: break
        }
    }
}
