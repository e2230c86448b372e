#!/usr/bin/env python3
"""Virtual Bluetooth LE health devices for the VM test, in one Bumble process.

    peripherals.py --config FILE --control SOCKET [--ready-file FILE] [--max-seconds S] [--verbose]

- A virtual controller on /dev/vhci: the kernel sees it as hci0, and bluetoothd drives it like a USB
  dongle. Further controllers, one per peripheral, share Bumble's in-process link ("air") with it, with the
  fixes in bumble_fixes.py that Linux 6.1 needs.
- A blood-pressure monitor: Blood Pressure Service 0x1810 (Measurement 0x2A35 indicate, Feature 0x2A49)
  and Current Time Service 0x1805 (Current Time 0x2A2B read/write/notify). Writing the 2A35 CCCD requires
  an encrypted link, so a hub must pair first (Just Works, bonded). On subscription it indicates its stored
  records, oldest first, and forgets each one the hub confirmed. Its clock can be wrong on purpose; the
  hub setting it through CTS is recorded.
- Optionally a second blood-pressure monitor that pairs with a passkey ("passkey": true in its settings):
  MITM required, IO capability DisplayOnly, so the hub must type the random 6-digit passkey it displays
  (reported in its status as "passkeys"); its 2A35 CCCD is written only over a link encrypted with an
  authenticated (MITM) key.
- A heart-rate sensor: Heart Rate Service 0x180D, Measurement 0x2A37 notified at 1 Hz with one RR interval
  (flags 0x10, uint8 heart rate) from a known sequence, Body Sensor Location 0x2A38. No pairing.

The scenario drives them through the control socket, one JSON object per line in each direction:
  {"op": "status"}                                  -> every peripheral's state and event counts
  {"op": "disappear", "device": "bp"}               -> stop advertising and drop its connections
  {"op": "appear", "device": "bp", "records": [..]} -> store records first (optional), advertise again
  {"op": "add-records", "device": "bp", "records": [..]}
  {"op": "set-clock", "device": "bp", "offsetSeconds": S}
Answers are {"ok": true, ...} or {"ok": false, "error": "..."}.

The configuration file (JSON) names the peripherals, addresses, initial records and clock offsets; see
DEFAULT_CONFIG. Keys "bp" and "bpk" are blood-pressure monitors, "hr" the heart-rate sensor. A record is {"systolic", "diastolic", "map", "pulse" (mmHg and beats/min, integers),
"user" (u8), "status" (measurement status bits), "minutesAgo" (measured that long before it is stored,
by the device's clock)}; its device time stamp is fixed when it is stored.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import signal
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bumble_fixes  # noqa: E402
from bumble import att, gatt, hci  # noqa: E402
from bumble.core import AdvertisingData  # noqa: E402
from bumble.device import Connection, Device, DeviceConfiguration  # noqa: E402
from bumble.host import Host  # noqa: E402
from bumble.pairing import PairingConfig, PairingDelegate  # noqa: E402
from bumble.transport.common import AsyncPipeSink  # noqa: E402
from bumble.transport.vhci import open_vhci_transport  # noqa: E402

HUB_CONTROLLER_ADDRESS = "00:1B:DC:F0:00:01"
DEFAULT_CONFIG = {
    "bp": {
        "name": "VG-BP",
        # Static random addresses (top two bits set), as most health devices use.
        "address": "F1:0B:50:00:00:01",
        "clockOffsetSeconds": 0,
        "records": [
            {"systolic": 121, "diastolic": 79, "map": 93, "pulse": 64, "user": 1, "status": 0, "minutesAgo": 180},
            {"systolic": 135, "diastolic": 88, "map": 104, "pulse": 91, "user": 1, "status": 0x0004, "minutesAgo": 60},
            {"systolic": 118, "diastolic": 76, "map": 90, "pulse": 70, "user": 2, "status": 0x0001, "minutesAgo": 20},
        ],
        "disconnectAfterTransferSeconds": None,
    },
    "hr": {
        "name": "VG-HR",
        "address": "F2:0B:50:00:00:02",
        "heartRates": [72, 74, 77, 80, 83, 85, 84, 81, 78, 75],
    },
}

UUID_BLOOD_PRESSURE_SERVICE = gatt.UUID.from_16_bits(0x1810)
UUID_BLOOD_PRESSURE_MEASUREMENT = gatt.UUID.from_16_bits(0x2A35)
UUID_BLOOD_PRESSURE_FEATURE = gatt.UUID.from_16_bits(0x2A49)
UUID_CURRENT_TIME_SERVICE = gatt.UUID.from_16_bits(0x1805)
UUID_CURRENT_TIME = gatt.UUID.from_16_bits(0x2A2B)
UUID_HEART_RATE_SERVICE = gatt.UUID.from_16_bits(0x180D)
UUID_HEART_RATE_MEASUREMENT = gatt.UUID.from_16_bits(0x2A37)
UUID_BODY_SENSOR_LOCATION = gatt.UUID.from_16_bits(0x2A38)
UUID_CCCD = gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR

# Blood Pressure Feature: body movement, cuff fit and irregular pulse detection, multiple bonds.
BP_FEATURES = 0x0001 | 0x0002 | 0x0004 | 0x0020
BODY_SENSOR_LOCATION_FINGER = 0x03

log = logging.getLogger("peripherals")


# --- byte layouts (device-protocols.md §3.1) ------------------------------------------------------------

def sfloat(value: int) -> bytes:
    """IEEE 11073 SFLOAT with exponent 0 for an integer -2048 < value < 2046 (what cuffs send for mmHg)."""
    if not -2046 < value < 2046:
        raise ValueError(f"{value} does not fit an SFLOAT mantissa")
    return struct.pack("<H", value & 0x0FFF)


def date_time(moment: datetime.datetime) -> bytes:
    return struct.pack("<HBBBBB", moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def blood_pressure_measurement(record: dict, stamp: datetime.datetime) -> bytes:
    """Flags 0x1E: mmHg, time stamp, pulse rate, user ID and measurement status all present."""
    flags = 0x02 | 0x04 | 0x08 | 0x10
    return (bytes([flags]) + sfloat(record["systolic"]) + sfloat(record["diastolic"]) + sfloat(record["map"])
            + date_time(stamp) + sfloat(record["pulse"]) + bytes([record["user"] & 0xFF])
            + struct.pack("<H", record["status"] & 0xFFFF))


def current_time(moment: datetime.datetime, adjust_reason: int = 0) -> bytes:
    """Exact Time 256 (date_time, day of week 1 = Monday, fractions256) and the adjust reason."""
    return date_time(moment) + bytes([moment.isoweekday(), moment.microsecond * 256 // 1_000_000, adjust_reason])


def parse_current_time(value: bytes) -> datetime.datetime:
    if len(value) < 7:
        raise ValueError(f"Current Time needs at least 7 bytes, got {len(value)}")
    year, month, day, hour, minute, second = struct.unpack_from("<HBBBBB", value)
    return datetime.datetime(year, month, day, hour, minute, second)


def heart_rate_measurement(rate: int) -> tuple[bytes, int]:
    """Flags 0x10 (uint8 rate, one RR interval in 1/1024 s); the RR interval matches the rate."""
    rr = round(60 / rate * 1024)
    return bytes([0x10, rate]) + struct.pack("<H", rr), rr


def advertising_data(name: str, service: int) -> bytes:
    """Everything a scanner needs fits the 31-byte advertising data (Bumble repeats it as scan response)."""
    data = bytes(AdvertisingData([
        (AdvertisingData.FLAGS, bytes([0x06])),
        (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, struct.pack("<H", service)),
        (AdvertisingData.SHORTENED_LOCAL_NAME, name.encode()),
    ]))
    assert len(data) <= 31, data
    return data


def now_text(moment: datetime.datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


# --- peripherals ---------------------------------------------------------------------------------------

class Peripheral:
    """One Bumble device on its own controller on the shared link; it can vanish and return."""

    service_uuid = 0

    def __init__(self, key: str, settings: dict, link) -> None:
        self.key = key
        self.settings = settings
        self.controller = bumble_fixes.KernelFriendlyController(f"{key}-controller", link=link)
        config = DeviceConfiguration(name=settings["name"], address=hci.Address(settings["address"]),
                                     advertising_data=advertising_data(settings["name"], self.service_uuid))
        self.device = Device(config=config, host=Host(self.controller, AsyncPipeSink(self.controller)))
        self.device.on(Device.EVENT_CONNECTION, self.on_connection)
        self.connections: list = []
        self.present = True
        self.counts = {"connections": 0, "disconnections": 0, "pairings": 0, "pairingFailures": 0,
                       "encryptions": 0, "authenticatedPairings": 0}
        self.events: list[dict] = []

    def event(self, kind: str, **fields) -> None:
        entry = {"t": round(time.monotonic(), 3), "event": kind, **fields}
        self.events.append(entry)
        log.info("%s: %s %s", self.key, kind, json.dumps(fields) if fields else "")

    async def start(self) -> None:
        await self.device.power_on()
        await self.advertise()

    async def advertise(self) -> None:
        # Fast advertising keeps discovery and reconnection quick under emulation. No auto_restart: Bumble
        # would advertise again after every disconnection, also one that `disappear` caused.
        await self.device.start_advertising(auto_restart=False, advertising_interval_min=100,
                                            advertising_interval_max=100)
        self.event("advertising")

    def on_connection(self, connection) -> None:
        self.connections.append(connection)
        self.counts["connections"] += 1
        self.event("connected", peer=str(connection.peer_address))
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self.on_disconnection(connection, reason))
        connection.on(connection.EVENT_PAIRING, lambda keys: self.on_pairing(connection, keys))
        connection.on(connection.EVENT_PAIRING_FAILURE, lambda reason: self.on_pairing_failure(reason))
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, lambda: self.on_encryption(connection))

    def on_disconnection(self, connection, reason) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        self.counts["disconnections"] += 1
        self.event("disconnected", reason=int(reason))
        if self.present:
            # Still switched on: connectable again, as a device is after its hub let go.
            asyncio.get_running_loop().create_task(self.advertise())

    def on_pairing(self, connection, keys) -> None:
        self.counts["pairings"] += 1
        key = keys.ltk or keys.ltk_peripheral
        # Bumble marks a key authenticated when the pairing method was not Just Works (passkey, comparison).
        authenticated = key is not None and key.authenticated
        if authenticated:
            self.counts["authenticatedPairings"] += 1
        self.event("paired", bonded=key is not None, authenticated=authenticated)

    def on_pairing_failure(self, reason) -> None:
        self.counts["pairingFailures"] += 1
        self.event("pairing-failed", reason=int(reason))

    def on_encryption(self, connection) -> None:
        if connection.is_encrypted:
            self.counts["encryptions"] += 1
            self.event("encrypted")

    async def disappear(self) -> None:
        """Gone, as when a cuff switches itself off: no advertising, its links dropped."""
        self.present = False
        await self.device.stop_advertising()
        for connection in list(self.connections):
            try:
                await connection.disconnect()
            except Exception as error:  # the link may already be going away
                log.info("%s: disconnect: %s", self.key, error)
        deadline = time.monotonic() + 20
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.event("disappeared")

    async def appear(self) -> None:
        self.present = True
        await self.advertise()

    def status(self) -> dict:
        return {"present": self.present, "connected": len(self.connections), **self.counts,
                "address": self.settings["address"], "name": self.settings["name"], "events": self.events[-50:]}


class BloodPressureMonitor(Peripheral):
    service_uuid = 0x1810

    def __init__(self, key: str, settings: dict, link) -> None:
        super().__init__(key, settings, link)
        self.clock_offset = datetime.timedelta(seconds=settings.get("clockOffsetSeconds", 0))
        self.stored: list[dict] = []     # not yet confirmed by a hub
        self.delivered: list[dict] = []  # confirmed indications, in order
        self.clock_writes: list[dict] = []
        self.indicating: set = set()  # connections that enabled indications on 2A35
        self.sending = False
        self.requires_passkey = bool(settings.get("passkey"))
        self.passkeys: list[str] = []  # every passkey displayed, oldest first
        if self.requires_passkey:
            self.device.pairing_config_factory = lambda connection: PairingConfig(
                sc=True, mitm=True, bonding=True, delegate=DisplayingDelegate(self))
        else:
            self.device.pairing_config_factory = lambda connection: PairingConfig(
                sc=True, mitm=False, bonding=True,
                delegate=PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT))
        self.measurement = gatt.Characteristic(UUID_BLOOD_PRESSURE_MEASUREMENT, gatt.Characteristic.Properties.INDICATE,
                                               att.Attribute.Permissions(0))
        # The CCCD written only over an encrypted link: the hub must pair before it gets any record. The passkey
        # monitor also wants the link's key authenticated (MITM), which Bumble's own permission check cannot
        # tell apart from Just Works (it calls every encrypted LE link authenticated).
        cccd_value = self.device.gatt_server.make_descriptor_value(self.measurement)
        if self.requires_passkey:
            cccd_value = att.AttributeValueV2(cccd_value.read, write=self.write_cccd_authenticated)
        self.measurement.descriptors = [gatt.Descriptor(
            UUID_CCCD, att.Attribute.Permissions.READABLE | att.Attribute.Permissions.WRITEABLE
            | att.Attribute.Permissions.WRITE_REQUIRES_ENCRYPTION, cccd_value)]
        self.measurement.on(self.measurement.EVENT_SUBSCRIPTION, self.on_subscription)
        feature = gatt.Characteristic(UUID_BLOOD_PRESSURE_FEATURE, gatt.Characteristic.Properties.READ,
                                      att.Attribute.Permissions.READABLE, struct.pack("<H", BP_FEATURES))
        self.clock = gatt.Characteristic(
            UUID_CURRENT_TIME, gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.WRITE
            | gatt.Characteristic.Properties.NOTIFY,
            att.Attribute.Permissions.READABLE | att.Attribute.Permissions.WRITEABLE
            | att.Attribute.Permissions.WRITE_REQUIRES_ENCRYPTION,
            gatt.CharacteristicValue(read=self.read_clock, write=self.write_clock))
        self.device.add_services([gatt.Service(UUID_BLOOD_PRESSURE_SERVICE, [self.measurement, feature]),
                                  gatt.Service(UUID_CURRENT_TIME_SERVICE, [self.clock])])
        self.add_records(settings.get("records", []))

    def device_now(self) -> datetime.datetime:
        return datetime.datetime.now() + self.clock_offset

    async def write_cccd_authenticated(self, bearer, value: bytes) -> None:
        connection = bearer if isinstance(bearer, Connection) else bearer.connection
        keys = await self.device.keystore.get(str(connection.peer_address)) if self.device.keystore else None
        key = keys and (keys.ltk or keys.ltk_peripheral)
        if not (connection.is_encrypted and key is not None and key.authenticated):
            self.event("cccd-rejected", characteristic="2A35", encrypted=bool(connection.is_encrypted),
                       keyAuthenticated=bool(key and key.authenticated))
            raise att.ATT_Error(att.ErrorCode.INSUFFICIENT_AUTHENTICATION)
        self.device.gatt_server.write_cccd(bearer, self.measurement, value)

    def read_clock(self, _connection) -> bytes:
        now = self.device_now()
        self.event("clock-read", deviceTime=now_text(now))
        return current_time(now)

    def write_clock(self, _connection, value: bytes) -> None:
        try:
            written = parse_current_time(value)
        except ValueError as error:
            self.event("clock-write-rejected", error=str(error))
            raise att.ATT_Error(att.ErrorCode.VALUE_NOT_ALLOWED) from error
        before = self.device_now()
        self.clock_offset = written - datetime.datetime.now()
        self.clock_writes.append({"bytes": value.hex(), "written": now_text(written), "deviceTimeBefore": now_text(before),
                                  "hostTime": now_text(datetime.datetime.now())})
        self.event("clock-written", written=now_text(written), before=now_text(before))

    def set_clock_offset(self, seconds: float) -> None:
        self.clock_offset = datetime.timedelta(seconds=seconds)
        self.event("clock-set", offsetSeconds=seconds)

    def add_records(self, records: list[dict]) -> list[dict]:
        added = []
        for record in records:
            for field in ("systolic", "diastolic", "map", "pulse", "user", "status"):
                if not isinstance(record.get(field), int):
                    raise ValueError(f"record field {field} must be an integer: {record}")
            stamp = (self.device_now() - datetime.timedelta(minutes=record.get("minutesAgo", 0))).replace(microsecond=0)
            entry = {**record, "deviceTime": now_text(stamp), "bytes": blood_pressure_measurement(record, stamp).hex()}
            self.stored.append(entry)
            added.append(entry)
        if added:
            self.event("records-stored", count=len(added))
            # A measurement taken while a hub listens goes out at once, as a cuff sends its latest reading.
            for connection in [c for c in self.indicating if c in self.connections][:1]:
                if not self.sending:
                    asyncio.get_running_loop().create_task(self.send_stored(connection))
        return added

    def on_subscription(self, connection, _notify: bool, indicate: bool) -> None:
        self.event("subscribed" if indicate else "unsubscribed", characteristic="2A35")
        (self.indicating.add if indicate else self.indicating.discard)(connection)
        if indicate and not self.sending:
            asyncio.get_running_loop().create_task(self.send_stored(connection))

    async def send_stored(self, connection) -> None:
        """Indicate the stored records one by one; a record counts as delivered when the hub confirms it."""
        self.sending = True
        try:
            while self.stored and connection in self.connections:
                entry = self.stored[0]
                try:
                    await self.device.indicate_subscriber(connection, self.measurement, bytes.fromhex(entry["bytes"]))
                except Exception as error:  # timeout or disconnection: keep it for the next connection
                    self.event("indication-failed", error=type(error).__name__)
                    return
                self.stored.pop(0)
                self.delivered.append({**entry, "confirmedAt": round(time.monotonic(), 3)})
                self.event("record-confirmed", deviceTime=entry["deviceTime"])
            after = self.settings.get("disconnectAfterTransferSeconds")
            if after is not None and connection in self.connections:
                await asyncio.sleep(after)
                if connection in self.connections:
                    await connection.disconnect()
        finally:
            self.sending = False

    def status(self) -> dict:
        return {**super().status(), "deviceTime": now_text(self.device_now()), "passkeys": self.passkeys,
                "indicating": len([c for c in self.indicating if c in self.connections]),
                "clockOffsetSeconds": round(self.clock_offset.total_seconds(), 3),
                "stored": self.stored, "delivered": self.delivered, "clockWrites": self.clock_writes}


    def on_disconnection(self, connection, reason) -> None:
        self.indicating.discard(connection)
        super().on_disconnection(connection, reason)


class DisplayingDelegate(PairingDelegate):
    """A monitor with a display and no keys: it shows a random passkey the hub must type (MITM protection)."""

    def __init__(self, monitor: BloodPressureMonitor) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY)
        self.monitor = monitor

    async def display_number(self, number: int, digits: int) -> None:
        text = f"{number:0{digits}d}"
        self.monitor.passkeys.append(text)
        # Test data, not a secret: the scenario types it into the hub as a person would.
        self.monitor.event("passkey-displayed", passkey=text)


class HeartRateSensor(Peripheral):
    service_uuid = 0x180D

    def __init__(self, key: str, settings: dict, link) -> None:
        super().__init__(key, settings, link)
        self.rates = settings.get("heartRates") or [72]
        self.sent: list[dict] = []
        self.subscribers: set = set()
        self.measurement = gatt.Characteristic(UUID_HEART_RATE_MEASUREMENT, gatt.Characteristic.Properties.NOTIFY,
                                               att.Attribute.Permissions(0))
        self.measurement.on(self.measurement.EVENT_SUBSCRIPTION, self.on_subscription)
        location = gatt.Characteristic(UUID_BODY_SENSOR_LOCATION, gatt.Characteristic.Properties.READ,
                                       att.Attribute.Permissions.READABLE, bytes([BODY_SENSOR_LOCATION_FINGER]))
        self.device.add_services([gatt.Service(UUID_HEART_RATE_SERVICE, [self.measurement, location])])

    def on_subscription(self, connection, notify: bool, _indicate: bool) -> None:
        (self.subscribers.add if notify else self.subscribers.discard)(connection)
        self.event("subscribed" if notify else "unsubscribed", characteristic="2A37")

    def on_disconnection(self, connection, reason) -> None:
        self.subscribers.discard(connection)
        super().on_disconnection(connection, reason)

    async def run(self) -> None:
        """One notification a second to every subscriber, the rates cycling through the known sequence."""
        next_at = time.monotonic()
        while True:
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            live = [c for c in self.subscribers if c in self.connections]
            if not live:
                continue
            rate = self.rates[len(self.sent) % len(self.rates)]
            value, rr = heart_rate_measurement(rate)
            for connection in live:
                try:
                    await self.device.notify_subscriber(connection, self.measurement, value)
                except Exception as error:
                    self.event("notification-failed", error=type(error).__name__)
            self.sent.append({"rate": rate, "rr": rr, "bytes": value.hex(), "t": round(time.monotonic(), 3),
                              "hostTime": now_text(datetime.datetime.now())})

    def status(self) -> dict:
        return {**super().status(), "subscribed": len(self.subscribers), "notificationsSent": len(self.sent),
                "sent": self.sent[-200:]}


# --- control socket -------------------------------------------------------------------------------------

class Control:
    def __init__(self, peripherals: dict[str, Peripheral]) -> None:
        self.peripherals = peripherals

    def peripheral(self, request: dict) -> Peripheral:
        key = request.get("device")
        if key not in self.peripherals:
            raise ValueError(f"unknown device {key!r}; known: {sorted(self.peripherals)}")
        return self.peripherals[key]

    async def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "status":
            return {"ok": True, "devices": {key: p.status() for key, p in self.peripherals.items()},
                    "monotonic": round(time.monotonic(), 3)}
        peripheral = self.peripheral(request)
        if op == "disappear":
            await peripheral.disappear()
            return {"ok": True}
        if op in ("appear", "add-records"):
            added = []
            if request.get("records"):
                if not isinstance(peripheral, BloodPressureMonitor):
                    raise ValueError(f"{peripheral.key} stores no records")
                added = peripheral.add_records(request["records"])
            if op == "appear":
                await peripheral.appear()
            return {"ok": True, "added": added}
        if op == "set-clock":
            if not isinstance(peripheral, BloodPressureMonitor):
                raise ValueError(f"{peripheral.key} has no clock")
            peripheral.set_clock_offset(float(request["offsetSeconds"]))
            return {"ok": True, "deviceTime": now_text(peripheral.device_now())}
        raise ValueError(f"unknown op {op!r}")

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    answer = await self.handle(json.loads(line))
                except Exception as error:  # a bad request is answered, never fatal
                    answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()


async def main_async(args: argparse.Namespace) -> int:
    bumble_fixes.check_version()
    settings = DEFAULT_CONFIG
    if args.config:
        settings = json.loads(Path(args.config).read_text())
    link = bumble_fixes.AddressedLink()
    transport = await open_vhci_transport(None)
    # Attached before the loop runs again, so the kernel's first HCI commands find it.
    hub = bumble_fixes.KernelFriendlyController("hci0", host_source=transport.source, host_sink=transport.sink,
                                                link=link, public_address=HUB_CONTROLLER_ADDRESS)
    peripherals: dict[str, Peripheral] = {}
    for key in ("bp", "bpk"):
        if key in settings:
            peripherals[key] = BloodPressureMonitor(key, settings[key], link)
    if "hr" in settings:
        peripherals["hr"] = HeartRateSensor("hr", settings["hr"], link)
    for peripheral in peripherals.values():
        await peripheral.start()
    tasks = [asyncio.create_task(p.run()) for p in peripherals.values() if isinstance(p, HeartRateSensor)]

    control = Control(peripherals)
    if os.path.exists(args.control):
        os.unlink(args.control)
    server = await asyncio.start_unix_server(control.serve_client, path=args.control)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.ready_file:
        Path(args.ready_file).write_text(json.dumps({"hub": str(hub.public_address),
                                                     **{k: p.settings["address"] for k, p in peripherals.items()}}))
    log.info("ready: %s", ", ".join(f"{k} {p.settings['address']}" for k, p in peripherals.items()))
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except asyncio.TimeoutError:
        log.info("max-seconds reached")
    server.close()
    for task in tasks:
        task.cancel()
    await transport.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="JSON settings (default: DEFAULT_CONFIG)")
    parser.add_argument("--control", required=True, help="Unix socket for the scenario's commands")
    parser.add_argument("--ready-file", help="written (JSON addresses) once the controller and devices are up")
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--verbose", action="store_true", help="Bumble's debug log (HCI packets)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)9.0f %(name)s %(message)s")
    if args.verbose:
        logging.getLogger("bumble").setLevel(logging.DEBUG)
    else:
        logging.getLogger("bumble").setLevel(logging.WARNING)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
