import VitalModel

/// The `frames` engine's parameters: a byte protocol described as data.
///
/// A frame starts with sync bytes (or a byte matching a bit pattern), has a fixed length or a length
/// field, may carry a checksum, and is one of several named messages told apart by fixed bytes. A
/// message can produce a reading from its fields and capture values for the request/response script.
public struct FramesSpec: Sendable, Hashable {
    public var sync: Sync
    public var length: Length
    /// A pattern every byte after the first must match (`mask`/`value`), e.g. "bit 7 clear" on protocols
    /// that reserve bit 7 for the sync byte. A byte that does not match means the frame was cut short.
    public var continuation: BytePattern?
    public var checksum: Checksum?
    public var maximumLength: Int
    public var messages: [Message]
    public var script: [ScriptStep]
    /// Set for a device that streams: the session outlives its script and ends when the device falls silent.
    public var stream: Stream?

    public init(sync: Sync, length: Length, continuation: BytePattern? = nil, checksum: Checksum? = nil,
                maximumLength: Int = 256, messages: [Message], script: [ScriptStep] = [], stream: Stream? = nil) {
        self.sync = sync
        self.length = length
        self.continuation = continuation
        self.checksum = checksum
        self.maximumLength = maximumLength
        self.messages = messages
        self.script = script
        self.stream = stream
    }

    /// `(byte & mask) == value`.
    public struct BytePattern: Sendable, Hashable {
        public var mask: UInt8
        public var value: UInt8
        public init(mask: UInt8, value: UInt8) { self.mask = mask; self.value = value }
        public func matches(_ byte: UInt8) -> Bool { byte & mask == value }
    }

    public enum Sync: Sendable, Hashable {
        /// Frames start with these exact bytes.
        case bytes([UInt8])
        /// Frames start with a byte matching the pattern.
        case pattern(BytePattern)
        /// Every chunk the transport delivers is one frame (HID reports, GATT values).
        case none
    }

    public enum Length: Sendable, Hashable {
        case fixed(Int)
        /// The frame length is `value of field + add` (so a field counting only the payload adds the
        /// header and checksum sizes).
        case field(FieldSpec, add: Int)
        /// Each message has its own fixed length, chosen by its `match` on the bytes before `decidingBytes`.
        case perMessage
    }

    public struct Checksum: Sendable, Hashable {
        public var algorithm: ChecksumAlgorithm
        /// First byte covered, counted from the frame start.
        public var from: Int
        /// Last byte covered, counted back from the frame end (-1 = last byte).
        public var through: Int
        /// Where the checksum is stored, counted back from the frame end (-1 = last byte).
        public var at: Int
        public var bigEndian: Bool

        public init(algorithm: ChecksumAlgorithm, from: Int, through: Int, at: Int, bigEndian: Bool) {
            self.algorithm = algorithm
            self.from = from
            self.through = through
            self.at = at
            self.bigEndian = bigEndian
        }
    }

    /// One kind of frame: how to recognise it and what it means.
    public struct Message: Sendable, Hashable {
        public var name: String
        /// Byte conditions that identify the message; empty matches any frame.
        public var match: [ByteCondition]
        /// The frame length when the protocol's length is per message.
        public var length: Int?
        /// Frames matching these conditions are understood and consumed but produce nothing (e.g.
        /// "finger out" frames of an oximeter).
        public var ignoreWhen: [[ByteCondition]]
        public var reading: ReadingMap?
        /// Values the script can use later, by name (e.g. a record count).
        public var captures: [String: FieldSpec]

        public init(name: String, match: [ByteCondition] = [], length: Int? = nil, ignoreWhen: [[ByteCondition]] = [],
                    reading: ReadingMap? = nil, captures: [String: FieldSpec] = [:]) {
            self.name = name
            self.match = match
            self.length = length
            self.ignoreWhen = ignoreWhen
            self.reading = reading
            self.captures = captures
        }
    }

    public struct ByteCondition: Sendable, Hashable {
        public var offset: Int
        public var pattern: BytePattern
        public init(offset: Int, pattern: BytePattern) { self.offset = offset; self.pattern = pattern }
    }

    /// Unsigned or signed integer assembled from bytes and bit ranges.
    public struct FieldSpec: Sendable, Hashable {
        public struct Part: Sendable, Hashable {
            public var offset: Int
            public var width: Int
            public var bigEndian: Bool
            /// Bits `low...high` of the part (0 = least significant), or all bits.
            public var bits: ClosedRange<Int>?
            public init(offset: Int, width: Int = 1, bigEndian: Bool = false, bits: ClosedRange<Int>? = nil) {
                self.offset = offset
                self.width = width
                self.bigEndian = bigEndian
                self.bits = bits
            }
            public var bitCount: Int { bits.map { $0.count } ?? width * 8 }
        }
        /// Parts from most to least significant, concatenated.
        public var parts: [Part]
        public var signed: Bool
        public init(parts: [Part], signed: Bool = false) { self.parts = parts; self.signed = signed }
        public var bitCount: Int { parts.reduce(0) { $0 + $1.bitCount } }
    }

    /// How a message becomes a reading.
    public struct ReadingMap: Sendable, Hashable {
        public var kind: MeasurementKind
        public var values: [ValueMap]
        public var time: TimeMap?
        /// The device user slot; `add` turns a 0-based slot into 1-based.
        public var userSlot: IntegerMap?
        public var status: [StatusRule]
        /// Emit at most one reading of this message per interval (live streams at 60 Hz).
        public var minimumIntervalMilliseconds: Int?

        public init(kind: MeasurementKind, values: [ValueMap], time: TimeMap? = nil, userSlot: IntegerMap? = nil,
                    status: [StatusRule] = [], minimumIntervalMilliseconds: Int? = nil) {
            self.kind = kind
            self.values = values
            self.time = time
            self.userSlot = userSlot
            self.status = status
            self.minimumIntervalMilliseconds = minimumIntervalMilliseconds
        }
    }

    /// An integer field with `value × scale + add`, `scale` kept as an exact decimal.
    public struct IntegerMap: Sendable, Hashable {
        public var field: FieldSpec
        public var add: Int
        /// Raw values (before `add`) that mean "not known".
        public var unknown: [Int64]
        public init(field: FieldSpec, add: Int = 0, unknown: [Int64] = []) { self.field = field; self.add = add; self.unknown = unknown }
    }

    public struct ValueMap: Sendable, Hashable {
        public var type: MeasurementType
        public var unit: MeasurementUnit
        public var field: FieldSpec
        public var scale: DecimalValue
        public var add: Int64
        /// Raw values that are not measurements, and what they mean.
        public var specials: [Int64: SpecialValue]
        public init(type: MeasurementType, unit: MeasurementUnit, field: FieldSpec, scale: DecimalValue = DecimalValue(mantissa: 1, exponent: 0),
                    add: Int64 = 0, specials: [Int64: SpecialValue] = [:]) {
            self.type = type
            self.unit = unit
            self.field = field
            self.scale = scale
            self.add = add
            self.specials = specials
        }
    }

    /// Wall-clock fields of the device; `year` includes its `add` (e.g. 2000 for two-digit years).
    public struct TimeMap: Sendable, Hashable {
        public var year: IntegerMap
        public var month: IntegerMap
        public var day: IntegerMap
        public var hour: IntegerMap
        public var minute: IntegerMap
        public var second: IntegerMap?
        public init(year: IntegerMap, month: IntegerMap, day: IntegerMap, hour: IntegerMap, minute: IntegerMap, second: IntegerMap?) {
            self.year = year
            self.month = month
            self.day = day
            self.hour = hour
            self.minute = minute
            self.second = second
        }
    }

    /// Sets a measurement status (or a status bit's name in `note`) when bytes match.
    public struct StatusRule: Sendable, Hashable {
        public var when: [ByteCondition]
        public var status: MeasurementStatus
        public init(when: [ByteCondition], status: MeasurementStatus) { self.when = when; self.status = status }
    }

    /// One step of the request/response script.
    public indirect enum ScriptStep: Sendable, Hashable {
        /// Send `template` (bytes and variables), then wait up to `timeout` for one of `expect`.
        case exchange(Exchange)
        /// Run `steps` once for each value `from...(from + count - 1)` of the variable `as`, where count is
        /// a captured variable.
        case repeatSteps(count: String, variable: String, from: Int, steps: [ScriptStep])
    }

    public struct Exchange: Sendable, Hashable {
        public var send: [TemplatePart]
        public var expect: [String]
        public var timeoutMilliseconds: Int
        public var retries: Int
        public init(send: [TemplatePart], expect: [String], timeoutMilliseconds: Int, retries: Int) {
            self.send = send
            self.expect = expect
            self.timeoutMilliseconds = timeoutMilliseconds
            self.retries = retries
        }
    }

    public enum TemplatePart: Sendable, Hashable {
        case bytes([UInt8])
        /// A variable written as `width` bytes.
        case variable(String, width: Int, bigEndian: Bool)
        /// The checksum of the bytes so far, with the frame's algorithm.
        case checksum
    }

    /// A streaming device's session: reaching the end of the script (or starting, without one) does not
    /// finish it. Frames go on decoding, the keep-alive is sent while the stream lasts, and the session
    /// finishes incomplete once no frame arrived for ``silenceMilliseconds``, so the daemon can retry later.
    public struct Stream: Sendable, Hashable {
        public var keepAlive: KeepAlive?
        /// No frame of the profile's messages for this long ends the session (`finished(complete: false)`).
        public var silenceMilliseconds: Int

        public init(keepAlive: KeepAlive? = nil, silenceMilliseconds: Int) {
            self.keepAlive = keepAlive
            self.silenceMilliseconds = silenceMilliseconds
        }
    }

    /// A request the device needs every so often to keep streaming (e.g. "still connected").
    public struct KeepAlive: Sendable, Hashable {
        /// Rendered like a script's `send`.
        public var send: [TemplatePart]
        /// Sent when this long passed since the session's last send of any kind.
        public var intervalMilliseconds: Int

        public init(send: [TemplatePart], intervalMilliseconds: Int) {
            self.send = send
            self.intervalMilliseconds = intervalMilliseconds
        }
    }
}
