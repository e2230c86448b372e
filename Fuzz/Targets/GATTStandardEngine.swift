// The gatt-standard engine's session: input byte 0 is the low byte of the characteristic UUID 0x2Axx,
// byte 1 picks the device quirks (bit i → GATTStandardEngine.Quirk.allCases[i]), the rest is one value.
// Every value gives exactly one event; a reading keeps the bytes the device sent; without quirks the
// engine must agree with the decoder StandardCharacteristics.decode.
//
// fuzz-seed: 2A35 3500
// fuzz-seed: 2A35 351F
// fuzz-seed: 2A36 3600
// fuzz-seed: 2A37 3700
// fuzz-options: -max_len=64

import FuzzSupport
import ProfileEngine
import VitalModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard input.count >= 2 else { return 0 }
    let uuid = "2A" + hexString([input[0]], separator: "")
    let quirks = Set(GATTStandardEngine.Quirk.allCases.enumerated().filter { input[1] & (1 << ($0.offset % 8)) != 0 }.map(\.element))
    let bytes = Array(input.dropFirst(2))

    let engine = GATTStandardEngine(characteristics: GATTStandardEngine.supported, quirks: quirks)
    let events = engine.decodeOnce(bytes, channel: uuid, device: fuzzContext.device, profileID: fuzzContext.profileID,
                                   at: fuzzContext.receivedAt)
    require(events.count == 1, "one value gave \(events.count) events")
    switch events.first {
    case .reading(let reading):
        require(GATTStandardEngine.supported.contains(uuid), "a reading from unsupported characteristic \(uuid)")
        require(reading.raw == bytes, "the reading does not keep the bytes the device sent")
        require(reading.source.frame == uuid && reading.source.profileID == fuzzContext.profileID, "source \(reading.source)")
        requireReadingShape(reading)
    case .problem(let error):
        requireDecodeErrorShape(error)
        require(error.offset <= bytes.count, "error offset \(error.offset) past the \(bytes.count)-byte value: \(error)")
    default:
        require(false, "a value gave \(String(describing: events.first))")
    }
    if quirks.isEmpty && GATTStandardEngine.supported.contains(uuid) {
        let direct = Result { () throws(DecodeError) in try StandardCharacteristics.decode(uuid, bytes, context: fuzzContext) }
        switch (direct, events.first) {
        case (.success(let expected), .reading(let reading)): require(expected == reading, "the engine and the decoder disagree")
        case (.failure(let expected), .problem(let error)): require(expected == error, "the engine and the decoder fail differently")
        default: require(false, "the engine and the decoder disagree on whether \(uuid) value decodes")
        }
    }
    return 0
}
