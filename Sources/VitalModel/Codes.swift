/// A code from the ISO/IEEE 11073-10101 nomenclature (MDC), as the 32-bit value `partition × 65536 + term`.
///
/// FHIR carries it as a decimal string under the system ``MDCCode/system``. `referenceID` is the
/// `MDC_...` name, emitted as `display` (consumers must not rely on it).
public struct MDCCode: Sendable, Hashable, CustomStringConvertible {
    public static let system = "urn:iso:std:iso:11073:10101"
    public let code: UInt32
    public let referenceID: String

    public init(_ code: UInt32, _ referenceID: String) {
        self.code = code
        self.referenceID = referenceID
    }

    /// Builds the 32-bit code from a partition and a 16-bit term code (protocols often send only the term).
    public init(partition: UInt16, term: UInt16, referenceID: String) {
        self.init(UInt32(partition) << 16 | UInt32(term), referenceID)
    }

    public var description: String { String(code) }
}

/// A LOINC code with its display, added beside the MDC coding for the R4 vital-signs profiles.
public struct LOINCCode: Sendable, Hashable {
    public static let system = "http://loinc.org"
    public let code: String
    public let display: String

    public init(_ code: String, _ display: String) {
        self.code = code
        self.display = display
    }
}

/// A unit: its UCUM code (what FHIR `Quantity.code` carries), a human display and the MDC unit code.
public struct MeasurementUnit: Sendable, Hashable {
    public static let ucumSystem = "http://unitsofmeasure.org"
    public let ucum: String
    public let display: String
    /// Nil where no source we trust gives the code; FHIR output uses UCUM only.
    public let mdc: MDCCode?

    public init(ucum: String, display: String, mdc: MDCCode?) {
        self.ucum = ucum
        self.display = display
        self.mdc = mdc
    }

    // Values from the IEEE 11073-20601 DIM partition (4 → +262144), as listed in fhir-mapping.md §1.4.
    public static let millimetreOfMercury = MeasurementUnit(ucum: "mm[Hg]", display: "mmHg", mdc: MDCCode(266016, "MDC_DIM_MMHG"))
    public static let kilopascal = MeasurementUnit(ucum: "kPa", display: "kPa", mdc: MDCCode(265987, "MDC_DIM_KILO_PASCAL"))
    public static let perMinute = MeasurementUnit(ucum: "/min", display: "beats/minute", mdc: MDCCode(264864, "MDC_DIM_BEAT_PER_MIN"))
    public static let percent = MeasurementUnit(ucum: "%", display: "%", mdc: MDCCode(262688, "MDC_DIM_PERCENT"))
    public static let kilogram = MeasurementUnit(ucum: "kg", display: "kg", mdc: MDCCode(263875, "MDC_DIM_KILO_G"))
    public static let gram = MeasurementUnit(ucum: "g", display: "g", mdc: MDCCode(263872, "MDC_DIM_X_G"))
    public static let pound = MeasurementUnit(ucum: "[lb_av]", display: "lb", mdc: MDCCode(263904, "MDC_DIM_LB"))
    public static let celsius = MeasurementUnit(ucum: "Cel", display: "°C", mdc: MDCCode(268192, "MDC_DIM_DEGC"))
    public static let fahrenheit = MeasurementUnit(ucum: "[degF]", display: "°F", mdc: MDCCode(266560, "MDC_DIM_FAHR"))
    public static let milligramPerDecilitre = MeasurementUnit(ucum: "mg/dL", display: "mg/dL", mdc: MDCCode(264274, "MDC_DIM_MILLI_G_PER_DL"))
    public static let millimolePerLitre = MeasurementUnit(ucum: "mmol/L", display: "mmol/L", mdc: MDCCode(266866, "MDC_DIM_MILLI_MOLE_PER_L"))
    public static let centimetre = MeasurementUnit(ucum: "cm", display: "cm", mdc: MDCCode(263441, "MDC_DIM_CENTI_M"))
    public static let inch = MeasurementUnit(ucum: "[in_i]", display: "in", mdc: MDCCode(263520, "MDC_DIM_INCH"))
    public static let kilogramPerSquareMetre = MeasurementUnit(ucum: "kg/m2", display: "kg/m2", mdc: MDCCode(264096, "MDC_DIM_KG_PER_M_SQ"))
    public static let second = MeasurementUnit(ucum: "s", display: "s", mdc: nil)
    public static let kilojoule = MeasurementUnit(ucum: "kJ", display: "kJ", mdc: nil)
}

/// What was measured: one entry of the code table (MDC type, LOINC where a vital-signs profile exists,
/// the units a device may report it in).
///
/// The compound blood-pressure type is ``noninvasiveBloodPressure``; its parts are ``systolic``,
/// ``diastolic`` and ``meanArterialPressure``.
public struct MeasurementType: Sendable, Hashable, CustomStringConvertible {
    /// Stable key used in readings' JSON and in profiles.
    public let key: String
    /// Nil for values a reading keeps but VitalGate does not upload (no verified MDC code in our sources).
    public let mdc: MDCCode?
    public let loinc: LOINCCode?
    public let units: [MeasurementUnit]

    public init(key: String, mdc: MDCCode?, loinc: LOINCCode?, units: [MeasurementUnit]) {
        self.key = key
        self.mdc = mdc
        self.loinc = loinc
        self.units = units
    }

    public var description: String { key }


    static let pressureUnits: [MeasurementUnit] = [.millimetreOfMercury, .kilopascal]

    public static let noninvasiveBloodPressure = MeasurementType(
        key: "blood-pressure", mdc: MDCCode(150020, "MDC_PRESS_BLD_NONINV"),
        loinc: LOINCCode("85354-9", "Blood pressure panel with all children optional"), units: pressureUnits)
    public static let systolic = MeasurementType(
        key: "systolic", mdc: MDCCode(150021, "MDC_PRESS_BLD_NONINV_SYS"),
        loinc: LOINCCode("8480-6", "Systolic blood pressure"), units: pressureUnits)
    public static let diastolic = MeasurementType(
        key: "diastolic", mdc: MDCCode(150022, "MDC_PRESS_BLD_NONINV_DIA"),
        loinc: LOINCCode("8462-4", "Diastolic blood pressure"), units: pressureUnits)
    /// The PHD IG example carries MAP with its MDC code only; no LOINC is required.
    public static let meanArterialPressure = MeasurementType(
        key: "mean-arterial-pressure", mdc: MDCCode(150023, "MDC_PRESS_BLD_NONINV_MEAN"), loinc: nil, units: pressureUnits)
    public static let pulseRate = MeasurementType(
        key: "pulse-rate", mdc: MDCCode(149546, "MDC_PULS_RATE_NON_INV"),
        loinc: LOINCCode("8867-4", "Heart rate"), units: [.perMinute])
    public static let oximeterPulseRate = MeasurementType(
        key: "oximeter-pulse-rate", mdc: MDCCode(149530, "MDC_PULS_OXIM_PULS_RATE"),
        loinc: LOINCCode("8867-4", "Heart rate"), units: [.perMinute])
    public static let heartRate = MeasurementType(
        key: "heart-rate", mdc: MDCCode(147842, "MDC_ECG_HEART_RATE"),
        loinc: LOINCCode("8867-4", "Heart rate"), units: [.perMinute])
    public static let oxygenSaturation = MeasurementType(
        key: "oxygen-saturation", mdc: MDCCode(150456, "MDC_PULS_OXIM_SAT_O2"),
        loinc: LOINCCode("2708-6", "Oxygen saturation in Arterial blood"), units: [.percent])
    public static let bodyWeight = MeasurementType(
        key: "body-weight", mdc: MDCCode(188736, "MDC_MASS_BODY_ACTUAL"),
        loinc: LOINCCode("29463-7", "Body weight"), units: [.kilogram, .gram, .pound])
    public static let bodyTemperature = MeasurementType(
        key: "body-temperature", mdc: MDCCode(150364, "MDC_TEMP_BODY"),
        loinc: LOINCCode("8310-5", "Body temperature"), units: [.celsius, .fahrenheit])
    /// Glucose is not an R4 vital sign. The LOINC code is the glucometer one, an assumption flagged in
    /// fhir-mapping.md §1.4 to check against the LOINC–IEEE map before it is relied on.
    public static let capillaryWholeBloodGlucose = MeasurementType(
        key: "glucose-capillary-whole-blood", mdc: MDCCode(160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
        loinc: LOINCCode("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),
        units: [.milligramPerDecilitre, .millimolePerLitre])
    public static let capillaryPlasmaGlucose = MeasurementType(
        key: "glucose-capillary-plasma", mdc: MDCCode(160188, "MDC_CONC_GLU_CAPILLARY_PLASMA"), loinc: nil,
        units: [.milligramPerDecilitre, .millimolePerLitre])
    /// Body height, in centimetres or inches: the units the R4 `bodyheight` profile allows (fhir-mapping.md §1.4).
    public static let bodyHeight = MeasurementType(
        key: "body-height", mdc: MDCCode(188740, "MDC_LEN_BODY_ACTUAL"),
        loinc: LOINCCode("8302-2", "Body height"), units: [.centimetre, .inch])
    public static let bodyMassIndex = MeasurementType(
        key: "body-mass-index", mdc: MDCCode(188752, "MDC_RATIO_MASS_BODY_LEN_SQ"),
        loinc: LOINCCode("39156-5", "Body mass index (BMI) [Ratio]"), units: [.kilogramPerSquareMetre])

    // Glucose by sample type (Bluetooth Glucose Measurement type nibble). The MDC codes are those
    // fhir-mapping.md §1.4 lists; glucose is no vital sign and these carry no LOINC code.
    static let glucoseUnits: [MeasurementUnit] = [.milligramPerDecilitre, .millimolePerLitre]
    public static let venousWholeBloodGlucose = MeasurementType(
        key: "glucose-venous-whole-blood", mdc: MDCCode(160192, "MDC_CONC_GLU_VENOUS_WHOLEBLOOD"), loinc: nil,
        units: glucoseUnits)
    public static let venousPlasmaGlucose = MeasurementType(
        key: "glucose-venous-plasma", mdc: MDCCode(160196, "MDC_CONC_GLU_VENOUS_PLASMA"), loinc: nil, units: glucoseUnits)
    public static let arterialWholeBloodGlucose = MeasurementType(
        key: "glucose-arterial-whole-blood", mdc: MDCCode(160200, "MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD"), loinc: nil,
        units: glucoseUnits)
    public static let arterialPlasmaGlucose = MeasurementType(
        key: "glucose-arterial-plasma", mdc: MDCCode(160204, "MDC_CONC_GLU_ARTERIAL_PLASMA"), loinc: nil,
        units: glucoseUnits)
    public static let undeterminedWholeBloodGlucose = MeasurementType(
        key: "glucose-undetermined-whole-blood", mdc: MDCCode(160364, "MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD"),
        loinc: nil, units: glucoseUnits)
    public static let undeterminedPlasmaGlucose = MeasurementType(
        key: "glucose-undetermined-plasma", mdc: MDCCode(160368, "MDC_CONC_GLU_UNDETERMINED_PLASMA"), loinc: nil,
        units: glucoseUnits)
    public static let interstitialFluidGlucose = MeasurementType(
        key: "glucose-interstitial-fluid", mdc: MDCCode(160212, "MDC_CONC_GLU_ISF"), loinc: nil, units: glucoseUnits)
    /// A meter check with control solution, not a measurement of a person (readings carry `testData`).
    public static let controlSolutionGlucose = MeasurementType(
        key: "glucose-control-solution", mdc: MDCCode(160208, "MDC_CONC_GLU_CONTROL"), loinc: nil, units: glucoseUnits)
    /// Glucose whose sample type the device did not say (a reserved type value).
    public static let glucose = MeasurementType(
        key: "glucose", mdc: MDCCode(160020, "MDC_CONC_GLU_GEN"), loinc: nil, units: glucoseUnits)

    // Pulse-oximeter values no verified source gives a type code for: kept in the reading, not uploaded.
    // FHIR could carry the fast/slow averages as SpO2 and pulse rate with the supplemental types
    // MDC_MODALITY_FAST (150580) and MDC_MODALITY_SLOW (150584); that needs components the exporter lacks.
    /// Pulse amplitude index (Bluetooth PLX), in percent.
    public static let pulseAmplitudeIndex = MeasurementType(
        key: "pulse-amplitude-index", mdc: nil, loinc: nil, units: [.percent])
    public static let oxygenSaturationFast = MeasurementType(
        key: "oxygen-saturation-fast", mdc: nil, loinc: nil, units: [.percent])
    public static let oximeterPulseRateFast = MeasurementType(
        key: "oximeter-pulse-rate-fast", mdc: nil, loinc: nil, units: [.perMinute])
    public static let oxygenSaturationSlow = MeasurementType(
        key: "oxygen-saturation-slow", mdc: nil, loinc: nil, units: [.percent])
    public static let oximeterPulseRateSlow = MeasurementType(
        key: "oximeter-pulse-rate-slow", mdc: nil, loinc: nil, units: [.perMinute])

    /// An R-R interval from a heart-rate sensor (kept in the reading; not uploaded as an Observation yet).
    public static let rrInterval = MeasurementType(
        key: "rr-interval", mdc: nil, loinc: nil, units: [.second])
    /// Energy expended reported by a heart-rate sensor (kept in the reading; not uploaded).
    public static let energyExpended = MeasurementType(
        key: "energy-expended", mdc: nil, loinc: nil, units: [.kilojoule])

    /// Every type the code table knows, for lookups by key.
    public static let all: [MeasurementType] = [
        .noninvasiveBloodPressure, .systolic, .diastolic, .meanArterialPressure, .pulseRate, .oximeterPulseRate,
        .heartRate, .oxygenSaturation, .bodyWeight, .bodyTemperature, .capillaryWholeBloodGlucose,
        .capillaryPlasmaGlucose, .rrInterval, .energyExpended, .bodyHeight, .bodyMassIndex,
        .venousWholeBloodGlucose, .venousPlasmaGlucose, .arterialWholeBloodGlucose, .arterialPlasmaGlucose,
        .undeterminedWholeBloodGlucose, .undeterminedPlasmaGlucose, .interstitialFluidGlucose, .controlSolutionGlucose,
        .glucose, .pulseAmplitudeIndex, .oxygenSaturationFast, .oximeterPulseRateFast, .oxygenSaturationSlow,
        .oximeterPulseRateSlow,
    ]

    public static func named(_ key: String) -> MeasurementType? { all.first { $0.key == key } }
}
