import VitalModel

extension ObservationBuilder {
    /// The statistics of a windowed reading (a heart-rate strap's samples summarised per window) as components
    /// of its one Observation: `minimum` and `maximum` as `valueQuantity` in the value's unit, and `count`, the
    /// samples they and the mean are made of, as `valueInteger`; each coded from the FHIR R4 code system
    /// `http://terminology.hl7.org/CodeSystem/observation-statistics`. The Observation stays a
    /// PhdNumericObservation + R4 `heartrate`: `valueQuantity` is the mean in `/min`, `effectivePeriod` the window.
    ///
    /// Why this shape, and not another:
    /// - It is R4's own: the `Observation/$stats` operation returns "one observation for each code, each
    ///   containing one component for each statistic. The Observation.component.code contains the statistic, and
    ///   is relative to the Observation.code", with an `effectivePeriod` (OperationDefinition-Observation-stats).
    ///   The statistic codes are defined there (StatisticsCode), so no code is invented.
    /// - `value[x]` is taken: the R4 `heartrate` profile wants the rate as a `valueQuantity` in `/min`, and
    ///   PhdNumericObservation allows only a Quantity there (fhir-mapping.md §1.3, §2).
    /// - Not a component repeating the heart-rate coding with a `valueRange`: R4 invariant obs-7 forbids a
    ///   component with the Observation's own code when the Observation has a value (the validator says so).
    /// - Not `valueSampledData` of the samples: it needs a fixed sampling period, and a strap's notifications
    ///   are irregular (connection events, samples left out without skin contact); it would also upload most of
    ///   what windows are there to avoid, and it would need a code of its own too.
    /// - Not `referenceRange`: that is the normal range to judge a value by, not what was measured.
    /// - Both profiles allow it: R4 vital signs allows any component (its code binding is extensible; vs-3 is met
    ///   by the values), the PHD base profile slices `component` openly by code, and PhdNumericObservation adds
    ///   no rule about components.
    ///
    /// Empty when the reading has no window, the value is not the summarised one, or the mean is absent
    /// (`dataAbsentReason`): statistics without their value would say more than the reading does.
    func windowStatistics(for value: MeasuredValue, hasValue: Bool) -> [JSONValue] {
        guard hasValue, let window = reading.window, window.minimum.type == value.type,
              case .number(let low) = window.minimum.value, case .number(let high) = window.maximum.value else { return [] }
        return [
            ["code": statistic("minimum", "Minimum"), "valueQuantity": quantity(low, window.minimum.unit)],
            ["code": statistic("maximum", "Maximum"), "valueQuantity": quantity(high, window.maximum.unit)],
            ["code": statistic("count", "Count"), "valueInteger": .int(window.sampleCount)],
        ]
    }

    func statistic(_ code: String, _ display: String) -> JSONValue {
        FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.observationStatistics, code, display: display)])
    }

    func quantity(_ number: DecimalValue, _ unit: MeasurementUnit) -> JSONValue {
        ["value": .decimal(number), "unit": .string(unit.display), "system": .string(MeasurementUnit.ucumSystem),
         "code": .string(unit.ucum)]
    }
}
