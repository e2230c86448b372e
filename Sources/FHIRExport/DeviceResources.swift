import VitalModel

/// PhdDevice (the measuring device) and PhgDevice (the hub) resources (fhir-mapping.md §1.9, §6.1–6.2).
enum DeviceResources {
    static let phdType = MDCCode(65573, "MDC_MOC_VMS_MDS_SIMP")
    static let phgType = MDCCode(531_981, "MDC_MOC_VMS_MDS_AHD")
    static let timeSyncProperty = MDCCode(68220, "MDC_TIME_SYNC_PROTOCOL")
    static let hardwareVersion = MDCCode(531_974, "MDC_ID_PROD_SPEC_HW")
    static let softwareVersion = MDCCode(531_975, "MDC_ID_PROD_SPEC_SW")
    static let firmwareVersion = MDCCode(531_976, "MDC_ID_PROD_SPEC_FW")

    /// The IEEE 11073 device specialization a reading kind belongs to.
    static func specialization(_ kind: MeasurementKind) -> MDCCode {
        switch kind {
        case .bloodPressure: MDCCode(528_391, "MDC_DEV_SPEC_PROFILE_BP")
        // A heart-rate strap is what IEEE 11073-10441 calls a cardiovascular fitness and activity monitor.
        case .heartRate: MDCCode(528_425, "MDC_DEV_SPEC_PROFILE_HF_CARDIO")
        case .pulseOximetry: MDCCode(528_388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM")
        case .bodyWeight: MDCCode(528_399, "MDC_DEV_SPEC_PROFILE_SCALE")
        case .bodyTemperature: MDCCode(528_392, "MDC_DEV_SPEC_PROFILE_TEMP")
        case .glucose: MDCCode(528_401, "MDC_DEV_SPEC_PROFILE_GLUCOSE")
        }
    }

    static func typedIdentifier(_ typeCode: String, system: String, value: String) -> JSONValue {
        ["type": FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.continuaDeviceIdentifiers, typeCode)]),
         "system": .string(system), "value": .string(value)]
    }

    static func version(_ type: MDCCode, _ value: String) -> JSONValue {
        ["type": FHIRJSON.concept([FHIRJSON.mdc(type)]), "value": .string(value)]
    }

    static func timeSync(_ method: MDCCode) -> JSONValue {
        ["type": FHIRJSON.concept([FHIRJSON.mdc(timeSyncProperty)]),
         "valueCode": [FHIRJSON.concept([FHIRJSON.mdc(method)])]]
    }

    static func phd(_ device: DeviceIdentity, kind: MeasurementKind, configuration: FHIRExportConfiguration,
                    claimProfile: Bool) throws(ExportError) -> FHIREntry {
        var identifiers: [JSONValue] = []
        var match: (system: String, value: String)?
        if let systemID = device.systemID {
            identifiers.append(typedIdentifier("SYSID", system: FHIRSystems.systemIDIdentifier, value: systemID.description))
            match = (FHIRSystems.systemIDIdentifier, systemID.description)
        }
        if let address = device.bluetoothAddress {
            identifiers.append(typedIdentifier("BTMAC", system: FHIRSystems.bluetoothAddressIdentifier, value: address.description))
            match = match ?? (FHIRSystems.bluetoothAddressIdentifier, address.description)
        }
        if let usb = device.usb, let serial = usb.serial, !serial.isEmpty {
            let value = usb.vendorProduct + ":" + serial
            identifiers.append(["system": .string(configuration.usbSerialSystem), "value": .string(value)])
            match = match ?? (configuration.usbSerialSystem, value)
        }
        guard let match else {
            throw ExportError(problem: "the device has no System ID, Bluetooth address or USB serial number",
                              hint: "a reading needs a stable device identity so the server can recognise re-sent readings; "
                                  + "give one (for `vitalgate decode`: --device-address or --system-id)")
        }

        var members: [(String, JSONValue)] = [("resourceType", "Device")]
        if claimProfile { members.append(("meta", ["profile": [.string(FHIRSystems.phd + "PhdDevice")]])) }
        members.append(("identifier", .array(identifiers)))
        // PhdDevice requires both; a device that did not say (no Device Information Service) is "unknown".
        members.append(("manufacturer", .string(device.manufacturer ?? "unknown")))
        members.append(("modelNumber", .string(device.model ?? "unknown")))
        if let serial = device.serialNumber { members.append(("serialNumber", .string(serial))) }
        members.append(("type", FHIRJSON.concept([FHIRJSON.mdc(phdType)])))
        members.append(("specialization", [["systemType": FHIRJSON.concept([FHIRJSON.mdc(specialization(kind))]),
                                             "version": "1"]]))
        var versions: [JSONValue] = []
        if let hardware = device.hardwareRevision { versions.append(version(hardwareVersion, hardware)) }
        if let software = device.softwareRevision { versions.append(version(softwareVersion, software)) }
        if let firmware = device.firmwareRevision { versions.append(version(firmwareVersion, firmware)) }
        // PhdDevice needs at least one version even for devices that report none (fhir-mapping.md §1.9).
        if versions.isEmpty { versions.append(version(firmwareVersion, "unknown")) }
        members.append(("version", .array(versions)))
        var properties: [JSONValue] = [timeSync(TimeSyncMethod.none.mdc)]
        if let usb = device.usb {
            properties.append(["type": FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.continuaDeviceIdentifiers, "USB")]),
                               "valueCode": [["text": .string(usb.vendorProduct)]]])
        }
        members.append(("property", .array(properties)))

        let query = identifierMatchQuery(system: match.system, value: match.value)
        return FHIREntry(fullUrl: StableUUID(name: "Device|" + query).urn, resourceType: "Device",
                         resource: .object(members), ifNoneExist: query)
    }

    static func phg(_ configuration: FHIRExportConfiguration) -> FHIREntry {
        let gateway = configuration.gateway
        var identifiers = [typedIdentifier("SYSID", system: FHIRSystems.systemIDIdentifier, value: gateway.systemID.description)]
        if let mac = gateway.ethernetAddress {
            identifiers.append(typedIdentifier("ETHMAC", system: FHIRSystems.ethernetAddressIdentifier, value: mac.description))
        }
        var members: [(String, JSONValue)] = [("resourceType", "Device")]
        if configuration.claimProfiles { members.append(("meta", ["profile": [.string(FHIRSystems.phd + "PhgDevice")]])) }
        members += [
            ("identifier", .array(identifiers)),
            // The PHG's manufacturer and model are those of the software (PhgDevice notes).
            ("manufacturer", "VitalGate project"),
            ("modelNumber", "VitalGate"),
            ("type", FHIRJSON.concept([FHIRJSON.mdc(phgType)])),
            ("specialization", .array(gateway.supportedKinds.map {
                ["systemType": FHIRJSON.concept([FHIRJSON.mdc(specialization($0))]), "version": "1"]
            })),
            ("version", [version(softwareVersion, gateway.softwareVersion)]),
            ("property", [timeSync(gateway.timeSync.mdc)]),
        ]
        let query = identifierMatchQuery(system: FHIRSystems.systemIDIdentifier, value: gateway.systemID.description)
        return FHIREntry(fullUrl: StableUUID(name: "Device|" + query).urn, resourceType: "Device",
                         resource: .object(members), ifNoneExist: query)
    }
}
