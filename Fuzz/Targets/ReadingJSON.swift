// The stored-reading JSON: what the Outbox keeps on disk and the ingest socket takes in. Input is JSON text.
// Whatever parses must serialise and parse back to itself; whatever decodes as a reading must write JSON that
// decodes to the same reading (so a stored reading never changes when read back); nothing may trap.
//
// Each line is one document, so the seed file of readings decoded from shipped captures gives complete readings.
//
// fuzz-seed-files: Tests/Fixtures/readings/*.jsonl
// fuzz-options: -max_len=16384

import FuzzSupport
import VitalModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    for line in fuzzInput(data, size).split(separator: UInt8(ascii: "\n")) { check(Array(line)) }
    return 0
}

func check(_ bytes: [UInt8]) {
    guard let value = try? JSONValue.parse(bytes: bytes) else { return }
    let text = value.serialized()
    require((try? JSONValue.parse(text)) == value, "JSON does not parse back to itself: \(text.prefix(200))")
    for candidate in [value] + (value["readings"].flatMap { if case .array(let items) = $0 { items } else { nil } } ?? []) {
        guard let reading = try? Reading(json: candidate["reading"] ?? candidate) else { continue }
        let again = try? Reading(json: reading.json)
        require(again == reading, "a decoded reading does not survive its own JSON: \(reading.json.serialized().prefix(300))")
    }
}
