import VitalModel

/// What an engine session tells the transport that drives it.
///
/// Sessions are pure state machines: bytes and time go in, these come out. The same session runs
/// against a real port, a pseudo-terminal simulator, a replayed capture and a fuzzer.
public enum EngineEvent: Sendable, Hashable {
    /// Write these bytes to the device; `channel` is a characteristic UUID for Bluetooth, nil for a stream.
    case send([UInt8], channel: String?)
    case reading(Reading)
    /// Input that was not a valid frame. The session resynchronised and goes on; the driver counts it.
    case problem(DecodeError)
    /// The conversation is over: the request/response script ended (`complete`), or it gave up after a
    /// timeout it could not recover from, or a streaming device (`frames.stream`) fell silent (both not
    /// `complete`: the driver may ask again later).
    case finished(complete: Bool)
}

/// One conversation with one device through a profile's engine.
public protocol EngineSession: Sendable {
    /// The transport is open. Returns the first requests, if the protocol starts with any.
    mutating func start(at time: HubTimestamp) -> [EngineEvent]
    /// Bytes arrived from the device (`channel` as in ``EngineEvent/send(_:channel:)``).
    mutating func receive(_ bytes: [UInt8], channel: String?, at time: HubTimestamp) -> [EngineEvent]
    /// ``timeoutMilliseconds`` passed since the last event without the awaited answer.
    mutating func timeout(at time: HubTimestamp) -> [EngineEvent]
    /// How long the session waits for an answer now, or nil when it is not waiting for one.
    var timeoutMilliseconds: Int? { get }
}

/// A profile's engine, ready to open sessions.
public protocol DeviceEngine: Sendable {
    /// The engine key a profile names, such as `frames`.
    var name: String { get }
    /// Frames or characteristics the engine turns into readings, for `vitalgate profile` listings.
    var inputs: [String] { get }
    func makeSession(device: DeviceIdentity, profileID: String) -> any EngineSession
}

/// Opens a session for each bytes-in, reading-out call of a decode-only tool: no script, no replies.
extension DeviceEngine {
    /// Decodes one chunk of bytes as a fresh session would, returning readings and problems.
    public func decodeOnce(_ bytes: [UInt8], channel: String?, device: DeviceIdentity, profileID: String,
                           at time: HubTimestamp) -> [EngineEvent] {
        var session = makeSession(device: device, profileID: profileID)
        _ = session.start(at: time)
        return session.receive(bytes, channel: channel, at: time)
    }
}
