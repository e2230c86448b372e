#!/usr/bin/env python3
"""A virtual Bluetooth Classic serial (SPP) device for VitalGate tests: a Bumble device with an RFCOMM
server on one channel (and its SDP record) that plays the device side of a `.capture` file to whoever
connects, as `vitalgate simulate` does on a pseudo-terminal.

Modes:
  --self-test   no kernel: a second Bumble device on the same in-process link (Bumble's `LocalLink`)
                connects over BR/EDR, opens the RFCOMM channel, sends the capture's host lines and checks
                that the device lines come back. Proves the Bumble side (LMP connection, L2CAP, RFCOMM) on
                this Bumble version.
  --vhci        attach a controller to the kernel through /dev/vhci (root, `modprobe hci_vhci`) so the
                hub's RFCOMM socket reaches the device. EXPERIMENTAL and untested: Bumble 0.0.236's
                controller is LE-only by default and lacks several BR/EDR commands Linux sends while it sets
                up hci0 (see README.md beside this file); the `ClassicHubController` below adds the ones
                known to be missing, unverified against a kernel.

Security: the peripheral's controller offers no Secure Simple Pairing, so Linux connects at its default
RFCOMM security level (low) without pairing or encryption; Bumble 0.0.236's controller has no BR/EDR
encryption (no HCI Set Connection Encryption handler), so a paired, encrypted link cannot be emulated.

Bumble is pinned in scripts/bluetooth-vm/requirements.txt (0.0.236); this script uses only its public
device, RFCOMM and SDP API, plus controller internals in `ClassicHubController` (--vhci only).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from bumble import hci, rfcomm
from bumble.controller import Controller
from bumble.core import UUID, PhysicalTransport
from bumble.device import Device, DeviceConfiguration
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

log = logging.getLogger("spp_peripheral")

SERIAL_PORT_SERVICE = UUID.from_16_bits(0x1101, "Serial Port")
SDP_RECORD_HANDLE = 0x00010001


# --- captures ------------------------------------------------------------------------------------------

@dataclass
class Line:
    kind: str  # "host" (>), "device" (<), "wait", "timeout"
    data: bytes = b""
    milliseconds: int = 0


def parse_capture(text: str) -> list[Line]:
    """The lines of a `.capture` file that matter on a byte stream (DeviceProfiles/README.md §2)."""
    lines: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">") or line.startswith("<"):
            body = line[1:].split("#", 1)[0].strip()
            if ":" in body.split(" ", 1)[0]:
                raise ValueError(f"line {number}: a GATT line ({body.split(' ', 1)[0]}) has no place on a serial link")
            try:
                data = bytes.fromhex(body)
            except ValueError as error:
                raise ValueError(f"line {number}: not hex bytes: {error}") from None
            lines.append(Line("host" if line[0] == ">" else "device", data))
        elif line.startswith("@wait"):
            lines.append(Line("wait", milliseconds=int(line.split()[1])))
        elif line.startswith("@timeout"):
            lines.append(Line("timeout"))
        # @received-at, @device and other annotations do not change the bytes.
    return lines


class Received:
    """Bytes from the other side, awaited in exact amounts."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.changed = asyncio.Event()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        self.changed.set()

    async def take(self, count: int, timeout: float) -> bytes:
        async def enough() -> None:
            while len(self.buffer) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(enough(), timeout)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


async def play_device_side(dlc: rfcomm.DLC, lines: list[Line], received: Received, response_timeout: float,
                           timeout_silence: float) -> int:
    """Plays the capture's device side on `dlc`; returns how many host lines differed from the capture."""
    mismatches = 0
    for line in lines:
        if line.kind == "host":
            got = await received.take(len(line.data), response_timeout)
            if got != line.data:
                mismatches += 1
                log.warning("host sent %s, the capture has %s", got.hex(" "), line.data.hex(" "))
        elif line.kind == "device":
            dlc.write(line.data)
            await dlc.drain()
        elif line.kind == "wait":
            await asyncio.sleep(line.milliseconds / 1000)
        elif line.kind == "timeout":
            await asyncio.sleep(timeout_silence)
    return mismatches


# --- the device ----------------------------------------------------------------------------------------

class SppPeripheral:
    """A Bumble device on its own controller on `link`, serving the capture on RFCOMM `channel`."""

    def __init__(self, link: LocalLink, address: str, name: str, channel: int, lines: list[Line],
                 response_timeout: float = 10.0, timeout_silence: float = 2.0, hang_up: bool = False) -> None:
        self.controller = Controller(f"{name}-controller", link=link, public_address=address)
        config = DeviceConfiguration(name=name, address=hci.Address(address), classic_enabled=True,
                                     classic_ssp_enabled=False, classic_sc_enabled=False, le_enabled=False)
        self.device = Device(config=config, host=Host(self.controller, AsyncPipeSink(self.controller)))
        self.channel = channel
        self.lines = lines
        self.response_timeout = response_timeout
        self.timeout_silence = timeout_silence
        self.hang_up = hang_up
        self.sessions = 0
        self.mismatches = 0

    async def start(self) -> None:
        server = rfcomm.Server(self.device)
        granted = server.listen(self.on_dlc, channel=self.channel)
        if granted != self.channel:
            raise RuntimeError(f"RFCOMM channel {self.channel} could not be taken")
        self.device.sdp_service_records = {
            SDP_RECORD_HANDLE: rfcomm.make_service_sdp_records(SDP_RECORD_HANDLE, self.channel, SERIAL_PORT_SERVICE)
        }
        await self.device.power_on()
        await self.device.set_discoverable(True)
        await self.device.set_connectable(True)
        log.info("SPP device %s on RFCOMM channel %d", self.device.public_address, self.channel)

    def on_dlc(self, dlc: rfcomm.DLC) -> None:
        received = Received()
        dlc.sink = received.feed
        self.sessions += 1
        log.info("session %d: the host opened channel %d", self.sessions, self.channel)
        asyncio.get_running_loop().create_task(self.play(dlc, received))

    async def play(self, dlc: rfcomm.DLC, received: Received) -> None:
        try:
            self.mismatches += await play_device_side(dlc, self.lines, received, self.response_timeout,
                                                      self.timeout_silence)
            log.info("session %d: capture played", self.sessions)
        except asyncio.TimeoutError:
            log.warning("session %d: the host did not send the next request within %.0f s", self.sessions,
                        self.response_timeout)
        if self.hang_up:
            await dlc.disconnect()


class ClassicHubController(Controller):
    """EXPERIMENTAL (--vhci): a Bumble controller the kernel can set up as a BR/EDR hci0.

    Bumble 0.0.236 reports `BR_EDR_NOT_SUPPORTED` and answers Unknown HCI Command to these BR/EDR setup
    commands; each handler returns the Core specification's defaults. Unverified against a kernel."""

    lmp_features = (hci.LmpFeatureMask.LE_SUPPORTED_CONTROLLER | hci.LmpFeatureMask.EXTENDED_FEATURES)

    def _ok(self, **fields):
        return hci.HCI_StatusReturnParameters(status=hci.HCI_ErrorCode.SUCCESS, **fields)

    def on_hci_read_voice_setting_command(self, _command):
        return hci.HCI_Read_Voice_Setting_ReturnParameters(status=hci.HCI_SUCCESS, voice_setting=0x0060)

    def on_hci_set_event_filter_command(self, _command):
        return self._ok()

    def on_hci_write_connection_accept_timeout_command(self, _command):
        return self._ok()

    def on_hci_write_page_timeout_command(self, _command):
        return self._ok()

    def on_hci_write_inquiry_mode_command(self, _command):
        return self._ok()

    def on_hci_write_default_link_policy_settings_command(self, _command):
        return self._ok()

    def on_hci_delete_stored_link_key_command(self, _command):
        return hci.HCI_Delete_Stored_Link_Key_ReturnParameters(status=hci.HCI_SUCCESS, num_keys_deleted=0)

    def on_hci_read_clock_offset_command(self, command):
        # Listed as supported by Bumble but unhandled: answer with a status, then the completion event.
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        self.send_hci_packet(hci.HCI_Read_Clock_Offset_Complete_Event(
            status=hci.HCI_SUCCESS, connection_handle=command.connection_handle, clock_offset=0))


async def self_test(peripheral: SppPeripheral, link: LocalLink, lines: list[Line]) -> int:
    """A Bumble central on the same link connects over BR/EDR and plays the host side."""
    controller = Controller("central-controller", link=link, public_address="F0:F1:F2:F3:F4:F5")
    config = DeviceConfiguration(name="central", address=hci.Address("F0:F1:F2:F3:F4:F5"), classic_enabled=True,
                                 classic_ssp_enabled=False, classic_sc_enabled=False, le_enabled=False)
    central = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
    await central.power_on()
    connection = await central.connect(peripheral.device.public_address, transport=PhysicalTransport.BR_EDR)
    multiplexer = await rfcomm.Client(connection).start()
    dlc = await multiplexer.open_dlc(peripheral.channel)
    received = Received()
    dlc.sink = received.feed
    failures = 0
    for line in lines:
        if line.kind == "host":
            dlc.write(line.data)
            await dlc.drain()
        elif line.kind == "device":
            got = await received.take(len(line.data), 10)
            if got != line.data:
                failures += 1
                print(f"device sent {got.hex(' ')}, the capture has {line.data.hex(' ')}", file=sys.stderr)
        elif line.kind == "wait":
            await asyncio.sleep(line.milliseconds / 1000)
    device_bytes = sum(len(line.data) for line in lines if line.kind == "device")
    print(f"self-test: {device_bytes} device bytes over RFCOMM channel {peripheral.channel}, "
          f"{failures} line(s) differed, {peripheral.mismatches} host line(s) differed")
    return 0 if failures == 0 and peripheral.mismatches == 0 else 1


async def main_async(args: argparse.Namespace) -> int:
    lines = parse_capture(Path(args.capture).read_text())
    link = LocalLink()
    hub = None
    if args.vhci:
        from bumble.transport.vhci import open_vhci_transport
        transport = await open_vhci_transport(None)
        hub = ClassicHubController("hci0", host_source=transport.source, host_sink=transport.sink, link=link,
                                   public_address=args.hub_address)
    peripheral = SppPeripheral(link, args.address, args.name, args.channel, lines,
                               timeout_silence=args.timeout_silence, hang_up=args.hang_up)
    await peripheral.start()
    if args.self_test:
        return await asyncio.wait_for(self_test(peripheral, link, lines), args.max_seconds)
    log.info("ready%s; stopping after %d s", f" (kernel controller {hub.public_address})" if hub else "", args.max_seconds)
    await asyncio.sleep(args.max_seconds)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", help="a .capture file whose device side is played")
    parser.add_argument("--address", default="00:00:5E:00:53:01", help="the device's Bluetooth address")
    parser.add_argument("--name", default="VitalGate SPP test device")
    parser.add_argument("--channel", type=int, default=1, help="RFCOMM channel (1-30)")
    parser.add_argument("--timeout-silence", type=float, default=2.0, help="seconds an @timeout line stays silent")
    parser.add_argument("--hang-up", action="store_true", help="close the channel after the capture")
    parser.add_argument("--max-seconds", type=int, default=120, help="bounded lifetime")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--self-test", action="store_true")
    mode.add_argument("--vhci", action="store_true")
    parser.add_argument("--hub-address", default="00:00:5E:00:53:FE", help="--vhci: the kernel controller's address")
    args = parser.parse_args()
    if not 1 <= args.channel <= 30:
        parser.error("RFCOMM channels are 1 to 30")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
