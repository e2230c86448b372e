import VitalModel
import ProfileEngine

/// Reads `engine.frames` into a ``FramesSpec`` and checks that its parts refer to each other correctly.
enum FramesSpecReader {
    static let fieldKeys = ["offset", "width", "endian", "bits", "signed", "parts"]

    static func engine(_ object: ProfileObject, kinds: [MeasurementKind]) throws(ProfileError) -> FramesEngine {
        var o = object
        let file = o.file
        let sync: FramesSpec.Sync
        let syncJSON = try o.required("sync", "{\"bytes\": \"AA\"}, {\"mask\": \"80\", \"value\": \"80\"} or \"none\"")
        if case .string("none") = syncJSON.value {
            sync = .none
        } else {
            var s = try ProfileObject(syncJSON, file: file, path: o.childPath("sync"))
            if s.has("bytes") {
                sync = .bytes(try s.hexBytes("bytes", count: 1...8)!)
            } else {
                sync = .pattern(try pattern(&s))
            }
            try s.finish()
        }

        let maximumLength = try o.int("maximumLength", in: 1...4096) ?? 256
        let lengthJSON = try o.required("length", "{\"fixed\": 5}, {\"field\": {...}, \"add\": 0} or \"per-message\"")
        let length: FramesSpec.Length
        if case .string("per-message") = lengthJSON.value {
            length = .perMessage
        } else {
            var l = try ProfileObject(lengthJSON, file: file, path: o.childPath("length"))
            if l.has("fixed") {
                length = .fixed(try l.int("fixed", in: 1...maximumLength)!)
            } else {
                var field = try l.object("field", required: true)!
                length = .field(try self.field(&field), add: try l.int("add", in: -64...4096) ?? 0)
                try field.finish(allowed: [])
            }
            try l.finish()
        }

        var continuation: FramesSpec.BytePattern?
        if var c = try o.object("continuation") {
            continuation = try pattern(&c)
            try c.finish()
        }

        var checksum: FramesSpec.Checksum?
        if var c = try o.object("checksum") {
            let algorithm = try c.choice("algorithm", ChecksumAlgorithm.self, required: true)!
            let endian = try c.choice("endian", Endian.self) ?? .little
            let from = try c.int("from", in: 0...4095) ?? 0
            let through = try c.int("through", in: -4096 ... -1) ?? -(algorithm.width + 1)
            let at = try c.int("at", in: -4096 ... -1) ?? -algorithm.width
            // A stored checksum that would run past the frame's end could never verify.
            guard at + algorithm.width <= 0 else {
                throw c.error("at", "a \(algorithm.width)-byte checksum at \(at) runs past the end of the frame", fix: "use at -\(algorithm.width) or lower")
            }
            checksum = FramesSpec.Checksum(algorithm: algorithm, from: from, through: through, at: at, bigEndian: endian == .big)
            try c.finish()
        }

        var messages: [FramesSpec.Message] = []
        var messageLocations: [String: SourceLocation] = [:]
        for (item, path) in try o.array("messages", required: true)! {
            var m = try ProfileObject(item, file: file, path: path)
            let message = try self.message(&m, length: length, kinds: kinds)
            // A stream with a fixed or field length cuts frames by that length; a message's own length
            // would be silently ignored there.
            if message.length != nil, length != .perMessage, sync != .none {
                throw m.error("length", "a message length is used only when engine.frames.length is \"per-message\" or sync is \"none\"",
                              fix: "remove it: frames of this stream are cut by engine.frames.length")
            }
            if let first = messageLocations[message.name] {
                throw m.error("name", "message \"\(message.name)\" is defined twice (first at \(first))", fix: "give each message its own name")
            }
            messageLocations[message.name] = m.location
            messages.append(message)
            try m.finish()
        }

        var known = Set(messages.flatMap { $0.captures.keys })
        var script: [FramesSpec.ScriptStep] = []
        for (item, path) in try o.array("script", nonEmpty: false) ?? [] {
            script.append(try step(item, file: file, path: path, messages: Set(messages.map(\.name)), variables: &known))
        }
        var stream: FramesSpec.Stream?
        if var s = try o.object("stream") {
            stream = try self.stream(&s, variables: known)
            try s.finish()
        }
        try o.finish()

        let spec = FramesSpec(sync: sync, length: length, continuation: continuation, checksum: checksum, maximumLength: maximumLength,
                              messages: messages, script: script, stream: stream)
        try checkLengths(spec, object: o)
        try checkSizes(spec, object: o)
        return FramesEngine(spec: spec)
    }

    /// Sizes that make frames impossible to assemble, and `{checksum}` with no checksum to compute.
    static func checkSizes(_ spec: FramesSpec, object: ProfileObject) throws(ProfileError) {
        let syncCount: Int = if case .bytes(let bytes) = spec.sync { bytes.count } else { 1 }
        if case .fixed(let fixed) = spec.length, fixed <= syncCount {
            throw object.error("length", "a \(fixed)-byte frame leaves no room after the \(syncCount) sync byte\(syncCount == 1 ? "" : "s")",
                               fix: "give the whole frame length, sync bytes included")
        }
        for message in spec.messages {
            if let length = message.length, length > spec.maximumLength {
                throw object.error("messages", "message \"\(message.name)\" is \(length) bytes, more than maximumLength \(spec.maximumLength)",
                                   fix: "raise maximumLength to at least \(length) or correct the message length")
            }
        }
        func usesChecksum(_ steps: [FramesSpec.ScriptStep]) -> Bool {
            steps.contains { step in
                switch step {
                case .exchange(let exchange): exchange.send.contains(.checksum)
                case .repeatSteps(_, _, _, let inner): usesChecksum(inner)
                }
            }
        }
        if spec.checksum == nil, usesChecksum(spec.script) {
            throw object.error("script", "a send uses {checksum} but the protocol has no checksum",
                               fix: "add engine.frames.checksum or remove {checksum} from the send")
        }
        if spec.checksum == nil, spec.stream?.keepAlive?.send.contains(.checksum) == true {
            throw object.error("stream", "the keepAlive uses {checksum} but the protocol has no checksum",
                               fix: "add engine.frames.checksum or remove {checksum} from the keepAlive")
        }
    }

    /// `"stream": {"keepAlive": "7D 81 AF 80 80 80 80 80 80", "keepAliveMs": 2000, "silenceMs": 5000}`.
    static func stream(_ s: inout ProfileObject, variables: Set<String>) throws(ProfileError) -> FramesSpec.Stream {
        let silence = try s.int("silenceMs", in: 100...600_000, required: true)!
        guard let text = try s.string("keepAlive", example: "\"7D 81 AF 80 80 80 80 80 80\"") else {
            // Read (not just looked up), so a misspelt "keepAliveMS" is suggested as keepAliveMs.
            if s.raw("keepAliveMs") != nil {
                throw s.error("keepAliveMs", "an interval without \"keepAlive\" bytes to send",
                              fix: "add \"keepAlive\" with the bytes the device needs, or remove keepAliveMs")
            }
            return FramesSpec.Stream(silenceMilliseconds: silence)
        }
        let send = try template(text, object: s, key: "keepAlive", variables: variables)
        guard let interval = try s.int("keepAliveMs", in: 100...600_000) else {
            throw s.error(nil, "\"keepAliveMs\" is missing", fix: "add \"keepAliveMs\": the milliseconds between keep-alives the device documents, e.g. 2000")
        }
        // A device that stopped streaming must get at least one keep-alive before the session gives up on it.
        guard interval < silence else {
            throw s.error("keepAliveMs", "\(interval) ms is not shorter than silenceMs \(silence), so a silent device would never get a keep-alive",
                          fix: "make keepAliveMs shorter than silenceMs")
        }
        return FramesSpec.Stream(keepAlive: FramesSpec.KeepAlive(send: send, intervalMilliseconds: interval), silenceMilliseconds: silence)
    }

    enum Endian: String, CaseIterable { case little, big }

    static func pattern(_ o: inout ProfileObject) throws(ProfileError) -> FramesSpec.BytePattern {
        let mask = try o.hexBytes("mask", required: true, count: 1...1)![0]
        let value = try o.hexBytes("value", required: true, count: 1...1)![0]
        guard mask != 0 else { throw o.error("mask", "a zero mask matches every byte", fix: "set the bits that must match") }
        guard value & ~mask == 0 else { throw o.error("value", "sets bits outside the mask, so nothing can match", fix: "clear the bits of value that are not in mask") }
        return FramesSpec.BytePattern(mask: mask, value: value)
    }

    /// A byte condition: `{"offset": 0, "equals": "A2"}` or `{"offset": 0, "mask": "80", "value": "80"}`.
    static func condition(_ json: LocatedJSON, file: String, path: String) throws(ProfileError) -> FramesSpec.ByteCondition {
        var c = try ProfileObject(json, file: file, path: path)
        let offset = try c.int("offset", in: 0...4095, required: true)!
        let pattern: FramesSpec.BytePattern
        if c.has("equals") {
            pattern = FramesSpec.BytePattern(mask: 0xFF, value: try c.hexBytes("equals", count: 1...1)![0])
        } else {
            pattern = try self.pattern(&c)
        }
        try c.finish()
        return FramesSpec.ByteCondition(offset: offset, pattern: pattern)
    }

    static func conditions(_ json: LocatedJSON, file: String, path: String) throws(ProfileError) -> [FramesSpec.ByteCondition] {
        guard case .array(let items) = json.value, !items.isEmpty else {
            throw ProfileError(file: file, location: json.location, field: path, problem: "expected a non-empty array of byte conditions",
                               fix: "write [{\"offset\": 0, \"equals\": \"A2\"}]")
        }
        var result: [FramesSpec.ByteCondition] = []
        for (index, item) in items.enumerated() { result.append(try condition(item, file: file, path: "\(path)[\(index)]")) }
        return result
    }

    /// Field keys (offset, width, endian, bits, signed, or parts) read from `o` itself.
    static func field(_ o: inout ProfileObject) throws(ProfileError) -> FramesSpec.FieldSpec {
        let signed = try o.bool("signed") ?? false
        var parts: [FramesSpec.FieldSpec.Part] = []
        if let items = try o.array("parts") {
            if o.has("offset") { throw o.error("offset", "give either offset or parts, not both", fix: "move offset into the parts") }
            for (item, path) in items {
                var p = try ProfileObject(item, file: o.file, path: path)
                parts.append(try part(&p))
                try p.finish()
            }
        } else {
            parts.append(try part(&o))
        }
        let bits = parts.reduce(0) { $0 + $1.bitCount }
        guard bits <= 32 else { throw o.error(nil, "the field has \(bits) bits", fix: "fields hold at most 32 bits") }
        return FramesSpec.FieldSpec(parts: parts, signed: signed)
    }

    static func part(_ o: inout ProfileObject) throws(ProfileError) -> FramesSpec.FieldSpec.Part {
        let offset = try o.int("offset", in: 0...4095, required: true)!
        let width = try o.int("width", in: 1...4) ?? 1
        let endian = try o.choice("endian", Endian.self) ?? .little
        var bits: ClosedRange<Int>?
        if let items = try o.array("bits") {
            guard items.count == 2 else { throw o.error("bits", "expected [lowest, highest]", fix: "write e.g. [0, 6] for bits 0 to 6") }
            let low = try ProfileObject.int(items[0].0, in: 0...(width * 8 - 1), file: o.file, path: items[0].1)
            let high = try ProfileObject.int(items[1].0, in: 0...(width * 8 - 1), file: o.file, path: items[1].1)
            guard low <= high else { throw o.error("bits", "lowest bit \(low) is above highest bit \(high)", fix: "write [lowest, highest]") }
            bits = low...high
        }
        return FramesSpec.FieldSpec.Part(offset: offset, width: width, bigEndian: endian == .big, bits: bits)
    }

    static func integer(_ o: inout ProfileObject) throws(ProfileError) -> FramesSpec.IntegerMap {
        let field = try self.field(&o)
        let add = try o.int("add", in: -1_000_000...1_000_000) ?? 0
        var unknown: [Int64] = []
        for (item, path) in try o.array("unknown") ?? [] {
            unknown.append(Int64(try ProfileObject.int(item, in: Int(Int32.min)...Int(UInt32.max), file: o.file, path: path)))
        }
        return FramesSpec.IntegerMap(field: field, add: add, unknown: unknown)
    }

    static func message(_ m: inout ProfileObject, length: FramesSpec.Length, kinds: [MeasurementKind]) throws(ProfileError) -> FramesSpec.Message {
        let name = try m.string("name", required: true, example: "\"record\"")!
        var match: [FramesSpec.ByteCondition] = []
        if let json = m.raw("match") { match = try conditions(json, file: m.file, path: m.childPath("match")) }
        let messageLength = try m.int("length", in: 1...4096)
        if case .perMessage = length, messageLength == nil {
            throw m.error(nil, "\"length\" is missing", fix: "engine.frames.length is \"per-message\", so each message needs \"length\"")
        }
        var ignore: [[FramesSpec.ByteCondition]] = []
        for (item, path) in try m.array("ignoreWhen") ?? [] { ignore.append(try conditions(item, file: m.file, path: path)) }
        var captures: [String: FramesSpec.FieldSpec] = [:]
        if var c = try m.object("captures") {
            for key in c.keys {
                guard key.first?.isLetter == true, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                    throw c.error(key, "\"\(key)\" is not a variable name", fix: "use letters, digits, '-' and '_', starting with a letter",
                                  at: c.member(key)?.keyLocation)
                }
                var f = try c.object(key, required: true)!
                captures[key] = try field(&f)
                try f.finish()
            }
            try c.finish()
        }
        var reading: FramesSpec.ReadingMap?
        if var r = try m.object("reading") { reading = try readingMap(&r, kinds: kinds); try r.finish() }
        return FramesSpec.Message(name: name, match: match, length: messageLength, ignoreWhen: ignore, reading: reading, captures: captures)
    }

    static func readingMap(_ r: inout ProfileObject, kinds: [MeasurementKind]) throws(ProfileError) -> FramesSpec.ReadingMap {
        let kind = try r.choice("kind", MeasurementKind.self, required: true)!
        guard kinds.contains(kind) else {
            throw r.error("kind", "\"\(kind.rawValue)\" is not among the profile's kinds", fix: "add it to \"kinds\" or correct it")
        }
        var values: [FramesSpec.ValueMap] = []
        for (item, path) in try r.array("values", required: true)! {
            var v = try ProfileObject(item, file: r.file, path: path)
            let typeKey = try v.string("type", required: true, example: "\"systolic\"")!
            guard let type = MeasurementType.named(typeKey) else {
                throw v.error("type", "\"\(typeKey)\" is not a measurement type", fix: "use one of " + MeasurementType.all.map { "\"\($0.key)\"" }.joined(separator: ", "))
            }
            let unitCode = try v.string("unit", required: true, example: "\"mm[Hg]\"")!
            guard let unit = type.units.first(where: { $0.ucum == unitCode }) else {
                throw v.error("unit", "\"\(unitCode)\" is not a unit of \(typeKey)", fix: "use one of " + type.units.map { "\"\($0.ucum)\"" }.joined(separator: ", "))
            }
            let field = try self.field(&v)
            var scale = DecimalValue(mantissa: 1, exponent: 0)
            if let json = v.raw("scale") {
                let text: String? = switch json.value {
                case .number(let n): n
                case .string(let s): s
                default: nil
                }
                guard let text, let value = DecimalValue(text), value.mantissa != 0, abs(value.mantissa) <= 1_000_000_000, (-9...9).contains(value.exponent) else {
                    throw ProfileError(file: r.file, location: json.location, field: v.childPath("scale"), problem: "is not a plain non-zero decimal",
                                       fix: "write it like \"0.005\" or 0.1 (no exponent notation)")
                }
                scale = value
            }
            let add = Int64(try v.int("add", in: -1_000_000...1_000_000) ?? 0)
            var specials: [Int64: SpecialValue] = [:]
            if var s = try v.object("specials") {
                for key in s.keys {
                    guard let raw = Int64(key) else {
                        throw s.error(key, "\"\(key)\" is not a raw integer value", fix: "write the raw field value in decimal, like \"127\"",
                                      at: s.member(key)?.keyLocation)
                    }
                    specials[raw] = try s.choice(key, SpecialValue.self, required: true)!
                }
                try s.finish()
            }
            try v.finish()
            values.append(FramesSpec.ValueMap(type: type, unit: unit, field: field, scale: scale, add: add, specials: specials))
        }
        var time: FramesSpec.TimeMap?
        if var t = try r.object("time") {
            func part(_ key: String, required: Bool) throws(ProfileError) -> FramesSpec.IntegerMap? {
                guard var p = try t.object(key, required: required) else { return nil }
                let map = try integer(&p)
                try p.finish()
                return map
            }
            time = FramesSpec.TimeMap(year: try part("year", required: true)!, month: try part("month", required: true)!,
                                      day: try part("day", required: true)!, hour: try part("hour", required: true)!,
                                      minute: try part("minute", required: true)!, second: try part("second", required: false))
            try t.finish()
        }
        var userSlot: FramesSpec.IntegerMap?
        if var u = try r.object("userSlot") { userSlot = try integer(&u); try u.finish() }
        var status: [FramesSpec.StatusRule] = []
        for (item, path) in try r.array("status") ?? [] {
            var s = try ProfileObject(item, file: r.file, path: path)
            let when = try conditions(try s.required("when", "[{\"offset\": 0, \"mask\": \"10\", \"value\": \"10\"}]"), file: r.file, path: s.childPath("when"))
            let name = try s.string("set", required: true, example: "\"questionable\"")!
            guard let flag = MeasurementStatus.names.first(where: { $0.1 == name })?.0 else {
                throw s.error("set", "\"\(name)\" is not a measurement status", fix: "use one of " + MeasurementStatus.names.map { "\"\($0.1)\"" }.joined(separator: ", "))
            }
            try s.finish()
            status.append(FramesSpec.StatusRule(when: when, status: flag))
        }
        return FramesSpec.ReadingMap(kind: kind, values: values, time: time, userSlot: userSlot, status: status,
                                     minimumIntervalMilliseconds: try r.int("minimumIntervalMs", in: 1...3_600_000))
    }

    static func step(_ json: LocatedJSON, file: String, path: String, messages: Set<String>, variables: inout Set<String>) throws(ProfileError) -> FramesSpec.ScriptStep {
        var s = try ProfileObject(json, file: file, path: path)
        if s.has("repeat") {
            let count = try s.string("repeat", required: true, example: "\"count\"")!
            guard variables.contains(count) else {
                throw s.error("repeat", "no message captures \"\(count)\"", fix: "capture it in a message's \"captures\" before this step")
            }
            let variable = try s.string("as", required: true, example: "\"index\"")!
            let from = try s.int("from", in: 0...65535) ?? 0
            variables.insert(variable)
            var steps: [FramesSpec.ScriptStep] = []
            for (item, itemPath) in try s.array("steps", required: true)! {
                steps.append(try step(item, file: file, path: itemPath, messages: messages, variables: &variables))
            }
            try s.finish()
            return .repeatSteps(count: count, variable: variable, from: from, steps: steps)
        }
        let text = try s.string("send", required: true, example: "\"A3 {index}\"")!
        let template = try self.template(text, object: s, key: "send", variables: variables)
        let expected = try s.locatedStrings("expect") ?? []
        for item in expected where !messages.contains(item.text) {
            throw ProfileError(file: file, location: item.location, field: item.path, problem: "no message is named \"\(item.text)\"",
                               fix: "use one of " + messages.sorted().map { "\"\($0)\"" }.joined(separator: ", "))
        }
        let expect = expected.map(\.text)
        let timeout = try s.int("timeoutMs", in: 1...600_000) ?? 2000
        let retries = try s.int("retries", in: 0...10) ?? 0
        try s.finish()
        return .exchange(FramesSpec.Exchange(send: template, expect: expect, timeoutMilliseconds: timeout, retries: retries))
    }

    /// `"A3 {index} {count:2be} {checksum}"`: hex bytes, variables with an optional width and byte order,
    /// and the checksum of everything before it.
    static func template(_ text: String, object: ProfileObject, key: String, variables: Set<String>) throws(ProfileError) -> [FramesSpec.TemplatePart] {
        var parts: [FramesSpec.TemplatePart] = []
        for token in text.split(separator: " ") {
            if token.hasPrefix("{") && token.hasSuffix("}") {
                let inner = token.dropFirst().dropLast()
                if inner == "checksum" { parts.append(.checksum); continue }
                // Empty pieces are kept so that "{}" and "{:2}" are errors, not an out-of-range subscript.
                let pieces = inner.split(separator: ":", omittingEmptySubsequences: false)
                let name = pieces.first.map(String.init) ?? ""
                guard variables.contains(name) else {
                    throw object.error(key, "\"{\(name)}\" is not a captured or loop variable", fix: "capture it in a message or name it in a repeat's \"as\"")
                }
                var width = 1, big = false
                if pieces.count > 1 {
                    let spec = pieces[1]
                    guard pieces.count == 2, let w = Int(spec.prefix(1)), (1...4).contains(w), ["", "le", "be"].contains(String(spec.dropFirst())) else {
                        throw object.error(key, "\"\(token)\" has a bad width", fix: "write {name:2le} or {name:2be}, width 1-4")
                    }
                    width = w
                    big = spec.hasSuffix("be")
                }
                parts.append(.variable(name, width: width, bigEndian: big))
            } else {
                guard let bytes = parseHexBytes(String(token)) else {
                    throw object.error(key, "\"\(token)\" is not hex bytes or a {variable}", fix: "write bytes like \"A3\" and variables like {index}")
                }
                parts.append(.bytes(bytes))
            }
        }
        guard !parts.isEmpty else { throw object.error(key, "sends nothing", fix: "give the bytes to send") }
        return parts
    }

    /// Every field of a message must lie inside the message when its length is known.
    static func checkLengths(_ spec: FramesSpec, object: ProfileObject) throws(ProfileError) {
        for (index, message) in spec.messages.enumerated() {
            let length: Int? = switch spec.length {
            case .fixed(let fixed): message.length ?? fixed
            default: message.length
            }
            guard let length else { continue }
            var fields: [(String, FramesSpec.FieldSpec)] = message.captures.map { ("captures.\($0.key)", $0.value) }
            if let reading = message.reading {
                fields += reading.values.map { ("reading.values \($0.type.key)", $0.field) }
                if let time = reading.time {
                    fields += [("time.year", time.year.field), ("time.month", time.month.field), ("time.day", time.day.field),
                               ("time.hour", time.hour.field), ("time.minute", time.minute.field)]
                    if let second = time.second { fields.append(("time.second", second.field)) }
                }
                if let slot = reading.userSlot { fields.append(("userSlot", slot.field)) }
            }
            let conditions = message.match + message.ignoreWhen.flatMap { $0 } + (message.reading?.status.flatMap(\.when) ?? [])
            for (name, field) in fields {
                for part in field.parts where part.offset + part.width > length {
                    throw object.error("messages", "message \"\(message.name)\" (messages[\(index)]): \(name) reads bytes \(part.offset)...\(part.offset + part.width - 1) of a \(length)-byte frame",
                                       fix: "correct the offset or the message length")
                }
            }
            for condition in conditions where condition.offset >= length {
                throw object.error("messages", "message \"\(message.name)\" (messages[\(index)]): a condition tests byte \(condition.offset) of a \(length)-byte frame",
                                   fix: "correct the condition's offset")
            }
            if let checksum = spec.checksum, FramesSession.coveredRange(length, checksum) == nil || length + checksum.at < 0 {
                throw object.error("checksum", "does not fit message \"\(message.name)\" of \(length) bytes", fix: "check from, through and at")
            }
        }
    }
}
