import ProfileEngine

/// Engines for vendor families whose session logic cannot be data, by the key a profile names.
/// Each reader turns the engine's parameter object into an engine, with located errors.
enum VendorEngineReaders {
    static let readers: [String: @Sendable (ProfileObject) throws(ProfileError) -> any DeviceEngine] = [
        "omron-hem790": omronHEM790,
    ]

    /// `engine.omron-hem790`: every member optional.
    ///
    /// ```json
    /// { "bank": 0, "preamble": ["version", "profile", "morning-average"], "model": "M7080IT",
    ///   "maximumRecords": 84, "retries": 3, "timeoutMs": 1000 }
    /// ```
    @Sendable static func omronHEM790(_ object: ProfileObject) throws(ProfileError) -> any DeviceEngine {
        var o = object
        var parameters = OmronHEM790Engine.Parameters()
        if let bank = try o.int("bank", in: 0...2) { parameters.bank = UInt8(bank) }
        if let items = try o.array("preamble", nonEmpty: false) {
            parameters.preamble = []
            for (item, path) in items {
                parameters.preamble.append(try ProfileLoader.word(item, OmronHEM790Engine.PreambleStep.self, file: o.file, path: path))
            }
        }
        if let model = try o.string("model", example: "\"M7080IT\"") {
            guard parameters.preamble.contains(.version) else {
                throw o.error("model", "is checked against the answer to VER00, which the preamble does not send",
                              fix: "add \"version\" to \"preamble\" or remove \"model\"")
            }
            parameters.model = model
        }
        parameters.maximumRecords = try o.int("maximumRecords", in: 1...255)
        if let retries = try o.int("retries", in: 0...10) { parameters.retries = retries }
        if let timeout = try o.int("timeoutMs", in: 100...60_000) { parameters.timeoutMilliseconds = timeout }
        try o.finish()
        return OmronHEM790Engine(parameters: parameters)
    }
}
