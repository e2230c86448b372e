import Testing
import DeviceIO

/// The DeviceIO target links libudev; a context needs no device, so this holds on any machine.
@Test func udevContextCanBeCreated() {
    #expect(DeviceLibraries.udevAvailable())
}
