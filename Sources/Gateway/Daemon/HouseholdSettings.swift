import Assignment
import ProfileCatalog
import VitalModel

/// Reads `household` and `healthWorker` from the daemon's configuration:
///
/// ```json
/// "household": {
///   "members": [{"label": "ong", "patient": "cccd:…"}, {"label": "ba", "patient": "bhxh:…"}],
///   "devices": [
///     {"bluetooth": "F1:0B:50:00:00:11", "slots": {"1": "ong", "2": "ba"}},
///     {"profile": "omron/hem-790it", "member": "ba"}
///   ]
/// },
/// "healthWorker": {"identifier": "SYSTEM|VALUE"}
/// ```
/// Identifiers are checked (length, digits, province code, year of birth); every error names line and field and
/// never repeats an identifier.
enum HouseholdSettings {
    static func parse(_ top: inout ProfileObject, identifierSystems: IdentifierSystems, file: String) throws(ProfileError)
        -> (household: Household, healthWorker: PerformerIdentifier?) {
        var household = Household()
        if let text = try top.string("owner", example: "\"cccd:001085012345\"") {
            do { household = .single(try identifierSystems.parse(text)) } catch {
                throw top.error("owner", error.description, fix: "write cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE")
            }
        }
        if var object = try top.object("household") {
            if top.has("owner") {
                throw top.error("owner", "both owner and household are set",
                                fix: "keep one: a household with a single member replaces owner")
            }
            household = try parseHousehold(&object, identifierSystems: identifierSystems, file: file)
        }
        var healthWorker: PerformerIdentifier?
        if var worker = try top.object("healthWorker") {
            let text = try worker.string("identifier", required: true, example: "\"https://hanhnghe.kcb.vn/sid/cchn|000123/HNO-CCHN\"")!
            let identifier: PerformerIdentifier
            do { identifier = try identifierSystems.parsePerformer(text) } catch {
                throw worker.error("identifier", error.description, fix: "correct the health worker's identifier")
            }
            healthWorker = identifier
            try worker.finish()
        }
        return (household, healthWorker)
    }

    static func parseHousehold(_ object: inout ProfileObject, identifierSystems: IdentifierSystems, file: String) throws(ProfileError) -> Household {
        var household = Household()
        for (item, path) in try object.array("members", required: true) ?? [] {
            var member = try ProfileObject(item, file: file, path: path)
            let label = try member.string("label", required: true, example: "\"ong\"")!
            guard !label.isEmpty, label.count <= 64, !label.contains(where: \.isNewline) else {
                throw member.error("label", "a label is 1 to 64 characters on one line", fix: "write a short name the family uses")
            }
            let text = try member.string("patient", required: true, example: "\"cccd:001085012345\"")!
            let patient: PatientIdentifier
            do { patient = try identifierSystems.parse(text) } catch {
                throw member.error("patient", error.description, fix: "write cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE")
            }
            if household.member(label) != nil {
                throw member.error("label", "an earlier member has the same label", fix: "give each member its own label")
            }
            if household.members.contains(where: { $0.patient == patient }) {
                throw member.error("patient", "this identifier is already another member's: a typo, or the same person twice",
                                   fix: "check the number against the member's card")
            }
            try member.finish()
            household.members.append(.init(label: label, patient: patient))
        }
        for (item, path) in try object.array("devices", nonEmpty: false) ?? [] {
            var entry = try ProfileObject(item, file: file, path: path)
            var selector = Household.DeviceSelector()
            selector.profile = try entry.string("profile", example: "\"omron/hem-790it\"")
            if let text = try entry.string("bluetooth", example: "\"F1:0B:50:00:00:11\"") {
                guard let address = EUI48(text) else {
                    throw entry.error("bluetooth", "not a Bluetooth address", fix: "write six hex bytes, e.g. \"F1:0B:50:00:00:11\" (`vitalgate bluetooth list` shows them)")
                }
                selector.bluetoothAddress = address
            }
            if let text = try entry.string("systemID", example: "\"00-1C-05-FF-FE-00-00-01\"") {
                guard let id = EUI64(text) else {
                    throw entry.error("systemID", "not an 8-byte System ID", fix: "write eight hex bytes as `vitalgate readings` shows the device")
                }
                selector.systemID = id
            }
            selector.serialNumber = try entry.string("serialNumber", example: "\"20110412\"")
            guard !selector.isEmpty else {
                throw entry.error(nil, "the entry names no device",
                                  fix: "give at least one of \"bluetooth\", \"systemID\", \"serialNumber\" or \"profile\"")
            }
            let member = try entry.string("member", example: "\"ong\"")
            var slots: [Int: String] = [:]
            if var slotObject = try entry.object("slots") {
                for key in slotObject.keys {
                    guard let slot = Int(key), (0...254).contains(slot), String(slot) == key else {
                        throw slotObject.error(key, "a user slot is a number from 0 to 254 (255 is the devices' \"unknown user\", "
                            + "which is never anyone's)", fix: "write the slot as `vitalgate readings` shows it, e.g. \"1\"")
                    }
                    guard let label = try slotObject.string(key, required: true) else { continue }
                    slots[slot] = label
                }
                try slotObject.finish()
                if slots.isEmpty { throw entry.error("slots", "no slot is bound", fix: "bind at least one slot, or use \"member\"") }
            }
            guard (member == nil) != slots.isEmpty else {
                throw entry.error(nil, member == nil ? "the entry says neither whose the device is nor whose its slots are"
                                      : "the entry has both \"member\" and \"slots\"",
                                  fix: "give \"member\" for a single-user device, or \"slots\" for a multi-user one")
            }
            // Labels are what a family calls its members, often given names: errors (logged at start) never quote them.
            for label in [member].compactMap({ $0 }) + slots.values.sorted() where household.member(label) == nil {
                throw entry.error(member != nil ? "member" : "slots", "names a label no household member has",
                                  fix: "use the label of one of the \(household.members.count) entries of household.members")
            }
            if household.devices.contains(where: { $0.selector == selector }) {
                throw entry.error(nil, "a second entry names the same device", fix: "merge the two entries")
            }
            try entry.finish()
            household.devices.append(.init(selector: selector, member: member, slots: slots))
        }
        try object.finish()
        return household
    }
}
