// Every engine through the profiles that use it: the input is a profile id line ("beurer/bm85") and the text
// of a capture, replayed into that profile's engine the way `vitalgate profile test` does. Seeds are the
// committed captures, so each engine starts from real device conversations. Needs the working directory
// to be the repository root (scripts/fuzz runs there).
//
// fuzz-seed-captures
// fuzz-options: -max_len=16384
// fuzz-dict: "\x0a< "
// fuzz-dict: "\x0a> "
// fuzz-dict: "\x0a@timeout"
// fuzz-dict: "\x0a@wait 1000"
// fuzz-dict: " FF"
// fuzz-dict: " 00"

import FuzzSupport
import ProfileCatalog
import ProfileEngine
import VitalModel

private let catalog: ProfileCatalog = {
    let catalog = ProfileCatalog.load(directory: "DeviceProfiles")
    require(!catalog.profiles.isEmpty, "no profiles under ./DeviceProfiles: run from the repository root")
    return catalog
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    guard let newline = bytes.firstIndex(of: 0x0A),
          let profile = catalog.profile(String(decoding: bytes[..<newline], as: UTF8.self)),
          let text = String(validating: bytes[(newline + 1)...], as: UTF8.self),
          let capture = try? Capture.parse(text, file: "fuzz.capture") else { return 0 }

    let replay = Replay.run(capture, profile: profile)
    let again = Replay.run(capture, profile: profile)
    require(replay.readings == again.readings && replay.problems == again.problems, "two replays of one capture differ")
    for reading in replay.readings {
        requireReadingShape(reading)
        require(reading.source.profileID == profile.id, "a reading names profile \(reading.source.profileID)")
        require(profile.kinds.contains(reading.kind), "\(profile.id) declares \(profile.kinds) but gave a \(reading.kind) reading")
    }
    for problem in replay.problems { requireDecodeErrorShape(problem) }
    return 0
}
