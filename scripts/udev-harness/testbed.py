"""umockdev testbeds of USB devices for VitalGate: plug, unplug and re-plug them while a program watches.

Run with the SYSTEM python3 (`/usr/bin/python3`): it needs `gi` and UMockdev from the Debian packages
umockdev, gir1.2-umockdev-1.0 and python3-gi (scripts/install-deps installs them); the project's .venv has
no `gi`. umockdev's uevents and /sys redirection only work inside a process that has
libumockdev-preload.so.0 loaded, so a driver script starts with `reexec_under_preload()`.

    import testbed
    testbed.reexec_under_preload()                      # first line of a driver: re-runs it preloaded
    bed = testbed.Testbed.start("omron-hem-790it", "cp2102-a")   # devices/<name>.umockdev
    run = bed.run([vitalgate, "devices", "--watch", "60"])       # the program sees only the testbed
    run.wait_for(lambda line: ..., timeout=30)          # waits for a stdout line, pumping GLib meanwhile
    bed.remove("cp2102-a")                              # "remove" uevent, then the sysfs tree goes
    bed.readd("cp2102-a")                               # plugged in again: a new node (see below)
    fd = bed.master_fd("omron-hem-790it")               # the device side of its emulated node (a pty)
    bed.pump(0.5)                                       # iterate GLib (ioctl handlers run there)
    run.stop(); bed.close()

API (all names are the file names under devices/ without .umockdev):
- `Testbed.start(*names, devices_dir=DEVICES)`: a new testbed with those devices attached.
- `add(name, text=None)`: attach a device from its record (or `text`); umockdev sends the "add" uevents.
- `remove(name)`: unplug: a "remove" uevent per sysfs device (child first), then its sysfs tree goes.
- `readd(name)`: plug the same device in again. umockdev cannot create a node name twice in one testbed
  (it keeps the first pty), so the node gets the next free number: ttyUSB0 comes back as ttyUSB3,
  hidraw0 as hidraw1. The kernel does the same when the old number is still held open.
- `node(name)`, `syspath(name)`, `usb_syspath(name)`: where the device is now.
- `master_fd(name)`: the master side of the pty that stands in for the node (umockdev emulates a hidraw
  or tty node without recorded contents as a pty); owned by the testbed, do not close it.
- Every node gets a `UMockdev.IoctlBase` when it is added: HIDIOCSFEATURE on a hidraw node is taken as a
  HID device takes it (the report is kept, see `feature_reports`); every other ioctl (termios, TIOCEXCL,
  modem lines, FIONREAD) is run on the pty that stands in for the node, as a terminal would answer it.
  umockdev 0.17 (Debian 12) answers ENOTTY to every ioctl on an emulated node without a handler; 0.19.5
  and later forward termios calls themselves. Handlers run while `pump()` iterates GLib's default context,
  so a program under test blocks in such an ioctl until the harness pumps.
- `feature_reports(name)` (and the older `accept_feature_reports(name)`): the list each feature report
  sent to the node is appended to (report id first).
  hidraw stand-in ptys are put in raw mode (no echo, no newline translation), as a hidraw node behaves.
- `run(cmd, env=None)`: a `Run` of `cmd` under the preload with UMOCKDEV_DIR set; stdout is read by a
  thread into `Run.lines`.
- `pump(seconds)`: iterate GLib's default main context for that long.
- `opens(name)`: how many times the node was opened since it was attached (inotify IN_OPEN on the pty's
  slave), so a test can prove a program never opened a device.
- `env(extra=None)`, `root`, and the raw umockdev calls `add_from_file`, `add_from_string`,
  `uevent(syspath, action)`, `remove_device(syspath)`.

Record files are umockdev-record's format (children first). Lines starting with '#' are comments this module
strips; blocks of parents that are already in the testbed (a shared root hub) are skipped, and blocks are
added parents first so a program reading sysfs on the child's "add" uevent finds its USB parents complete.
"""
from __future__ import annotations

import ctypes
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import GLib, UMockdev  # noqa: E402

HERE = Path(__file__).resolve().parent
DEVICES = HERE / "devices"
PRELOAD = "libumockdev-preload.so.0"
# HIDIOCSFEATURE(len) is _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x06, len): these are its type and number bits.
HIDIOCSFEATURE_TYPE_NR = (ord("H") << 8) | 0x06


def preloaded() -> bool:
    return PRELOAD in os.environ.get("LD_PRELOAD", "")


def reexec_under_preload() -> None:
    """Re-runs this script with libumockdev-preload.so.0 loaded (what `umockdev-wrapper` does)."""
    if preloaded():
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = PRELOAD + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def umockdev_version() -> tuple:
    """umockdev's version from `umockdev-run --version`; (0,) when unknown."""
    try:
        text = subprocess.run(["umockdev-run", "--version"], capture_output=True, text=True, timeout=10).stdout
        return tuple(int(part) for part in text.strip().split("."))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return (0,)


class Block:
    """One device of a record: its sysfs path (without /sys) and its lines."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.path = lines[0][3:].strip()
        self.node = next((line[3:].strip() for line in lines if line.startswith("N: ")), None)

    @property
    def syspath(self) -> str:
        return "/sys" + self.path

    def prop(self, key: str) -> str | None:
        return next((line.split("=", 1)[1] for line in lines_with(self.lines, "E: " + key + "=")), None)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def lines_with(lines: list[str], prefix: str):
    return (line for line in lines if line.startswith(prefix))


def parse_record(text: str) -> list[Block]:
    """Blocks in file order (children first); '#' comment lines removed."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                blocks.append(Block(current))
            current = []
        else:
            current.append(line)
    if current:
        blocks.append(Block(current))
    for block in blocks:
        if not block.lines[0].startswith("P: /devices/"):
            raise ValueError(f"a record block must start with 'P: /devices/...', not {block.lines[0]!r}")
    return blocks


def renumber(text: str, old_node: str, new_node: str) -> str:
    """The record with its node renamed (ttyUSB0 -> ttyUSB3) and the node's minor number to match."""
    number = re.search(r"(\d+)$", new_node).group(1)
    out = re.sub(r"(?<![\w.])" + re.escape(old_node) + r"(?!\w)", new_node, text)
    lines = []
    in_node_block = False
    for line in out.splitlines():
        if line.startswith("P: "):
            in_node_block = line.rstrip().endswith("/" + new_node)
        if in_node_block and line.startswith("E: MINOR="):
            line = "E: MINOR=" + number
        elif in_node_block and line.startswith("A: dev="):
            major = line[len("A: dev="):].split(":")[0]
            line = f"A: dev={major}:{number}\\n"
        lines.append(line)
    return "\n".join(lines) + "\n"


class Device:
    """A device attached to the testbed: its record as added, and its own (not shared) sysfs blocks."""

    def __init__(self, name: str, text: str, own: list[Block]):
        self.name = name
        self.text = text
        self.own = own  # children first
        self.node_block = next(block for block in own if block.node)

    @property
    def node(self) -> str:
        return "/dev/" + self.node_block.node

    @property
    def syspath(self) -> str:
        return self.node_block.syspath

    @property
    def usb_syspath(self) -> str:
        """The device's own USB device (DEVTYPE=usb_device), whose removal is the unplug."""
        return next(block.syspath for block in self.own if block.prop("DEVTYPE") == "usb_device")


class OpenWatch:
    """Counts IN_OPEN on files with inotify (the standard library has no binding; ctypes calls libc)."""

    IN_OPEN = 0x20

    def __init__(self):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.paths: dict[int, str] = {}
        self.counts: dict[str, int] = {}

    def watch(self, path: str) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), self.IN_OPEN)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path} failed")
        self.paths[wd] = path
        self.counts.setdefault(path, 0)

    def count(self, path: str) -> int:
        self.drain()
        return self.counts.get(path, 0)

    def drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset + 16 <= len(data):
                wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                offset += 16 + length
                if mask & self.IN_OPEN and wd in self.paths:
                    self.counts[self.paths[wd]] += 1

    def close(self) -> None:
        os.close(self.fd)


class Run:
    """A program running under the testbed; its stdout lines arrive in `lines` as they are printed."""

    def __init__(self, testbed: "Testbed", process: subprocess.Popen):
        self.testbed = testbed
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _collect(self) -> bool:
        """Moves what was read into `lines`; False once stdout has closed."""
        open_ = True
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return open_
            if line is None:
                open_ = False
                self._queue.put(None)
                return open_
            self.lines.append(line)

    def wait_for(self, predicate, timeout: float) -> list[str]:
        """Pumps GLib until `predicate(lines)` holds; raises TimeoutError (with the lines) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            still_open = self._collect()
            if predicate(self.lines):
                return self.lines
            if not still_open or time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout}s; stdout {'open' if still_open else 'closed'}; lines so far: {self.lines}")
            self.testbed.pump(0.02)

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, number)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"pid {self.process.pid} did not end within {timeout}s")
            self.testbed.pump(0.02)
        self._reader.join(timeout=5)
        self._collect()
        return self.process.returncode

    def stop(self) -> None:
        """SIGTERM by pid, then SIGKILL after 5 s."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Testbed:
    def __init__(self, devices_dir: Path = DEVICES):
        if not preloaded():
            raise RuntimeError(f"{PRELOAD} is not loaded, so umockdev cannot send uevents. "
                               "Fix: call testbed.reexec_under_preload() first, or run under umockdev-wrapper")
        self.devices_dir = Path(devices_dir)
        self.bed = UMockdev.Testbed.new()
        self.root = self.bed.get_root_dir()
        self.devices: dict[str, Device] = {}
        self.used_nodes: set[str] = set()
        self.open_watch = OpenWatch()
        self.context = GLib.MainContext.default()
        # umockdev 0.18.4 and later send the "remove" uevents from remove_device() themselves.
        self.sends_remove_uevents = umockdev_version() >= (0, 18, 4)
        self.runs: list[Run] = []
        self.ioctl_handlers: dict[str, object] = {}
        self.reports: dict[str, list[bytes]] = {}

    @classmethod
    def start(cls, *names: str, devices_dir: Path = DEVICES) -> "Testbed":
        testbed = cls(devices_dir)
        for name in names:
            testbed.add(name)
        return testbed

    # Raw umockdev calls.
    def add_from_file(self, path: str) -> bool:
        return self.bed.add_from_file(str(path))

    def add_from_string(self, text: str) -> bool:
        return self.bed.add_from_string(text)

    def uevent(self, syspath: str, action: str) -> None:
        self.bed.uevent(syspath, action)

    def remove_device(self, syspath: str) -> None:
        self.bed.remove_device(syspath)

    # Devices by name.
    def record(self, name: str) -> str:
        return (self.devices_dir / f"{name}.umockdev").read_text()

    def add(self, name: str, text: str | None = None) -> Device:
        if name in self.devices:
            raise ValueError(f"{name} is attached already; remove it first")
        text = text if text is not None else self.record(name)
        blocks = parse_record(text)
        # The device is everything up to its own USB device; what is above (the root hub) is shared.
        usb_device = next((i for i, block in enumerate(blocks) if block.prop("DEVTYPE") == "usb_device"), None)
        if usb_device is None:
            raise ValueError(f"{name}: the record has no block with E: DEVTYPE=usb_device")
        own = blocks[:usb_device + 1]
        node_blocks = [block for block in own if block.node and block.prop("SUBSYSTEM") != "usb"]
        if len(node_blocks) != 1:
            raise ValueError(f"{name}: a record needs exactly one tty/hidraw node block, found {len(node_blocks)}")
        if any(os.path.isdir(self.root + block.syspath) for block in own):
            raise ValueError(f"{name}: {own[-1].syspath} is in the testbed already")
        missing = [block for block in blocks if not os.path.isdir(self.root + block.syspath)]
        device = Device(name, text, own)
        # The ioctl handler goes in before the node exists: a program reacting to the "add" uevent at once
        # must already find its ioctls answered, as on a real node.
        self._attach_ioctl_handler(name, device)
        # Parents first: the child's "add" uevent must find its USB parents complete in sysfs.
        try:
            self.add_from_string("\n".join(block.text for block in reversed(missing)))
        except Exception:
            self.bed.detach_ioctl(device.node)
            raise
        self.devices[name] = device
        self.used_nodes.add(device.node_block.node)
        self.open_watch.watch(self.pty_slave(name))
        if device.node_block.prop("SUBSYSTEM") == "hidraw":
            # A hidraw node passes reports unchanged and echoes nothing; its stand-in pty must too.
            tty.setraw(self.master_fd(name))
        return device

    def remove(self, name: str) -> None:
        device = self.devices.pop(name)
        for block in device.own:  # children first, as the kernel reports an unplug
            if not self.sends_remove_uevents:
                self.uevent(block.syspath, "remove")
            self.remove_device(block.syspath)

    def readd(self, name: str) -> Device:
        if name in self.devices:
            self.remove(name)
        text = self.record(name)
        node = next(block.node for block in parse_record(text) if block.node and block.prop("SUBSYSTEM") != "usb")
        prefix = re.sub(r"\d+$", "", node)
        number = 0
        while f"{prefix}{number}" in self.used_nodes:
            number += 1
        return self.add(name, renumber(text, node, f"{prefix}{number}"))

    def node(self, name: str) -> str:
        return self.devices[name].node

    def syspath(self, name: str) -> str:
        return self.devices[name].syspath

    def usb_syspath(self, name: str) -> str:
        return self.devices[name].usb_syspath

    def master_fd(self, name: str) -> int:
        return self.bed.get_dev_fd(self.node(name))

    def pty_slave(self, name: str) -> str:
        """The /dev/pts/N that stands in for the node (the testbed's /dev/<node> is a symlink to it)."""
        return os.path.realpath(self.root + self.node(name))

    def attach_ioctl(self, name: str, handler) -> None:
        self.bed.attach_ioctl(self.node(name), handler)

    def feature_reports(self, name: str) -> list[bytes]:
        """The feature reports (HIDIOCSFEATURE) sent to the node since it was attached, report id first."""
        return self.reports[name]

    def accept_feature_reports(self, name: str) -> list[bytes]:
        return self.feature_reports(name)

    def _attach_ioctl_handler(self, name: str, device: Device) -> None:
        reports: list[bytes] = []
        hidraw = device.node_block.prop("SUBSYSTEM") == "hidraw"

        def handle(_handler, client) -> bool:
            request = client.get_request()
            if hidraw and (request >> 30) == 3 and (request & 0xFFFF) == HIDIOCSFEATURE_TYPE_NR:
                size = (request >> 16) & 0x3FFF
                reports.append(bytes(client.get_arg().resolve(0, size).retrieve()))
                client.complete(size, 0)
                return True
            # Anything else is what the pty itself answers: run the ioctl on the real descriptor.
            result, error = client.execute()
            client.complete(result, error)
            return True

        handler = UMockdev.IoctlBase()
        handler.connect("handle-ioctl", handle)
        self.ioctl_handlers[name] = handler  # kept alive as long as the testbed
        self.reports[name] = reports
        self.bed.attach_ioctl(device.node, handler)

    def opens(self, name: str) -> int:
        return self.open_watch.count(self.pty_slave(name))

    # Programs.
    def env(self, extra: dict | None = None) -> dict:
        env = dict(os.environ)
        preload = env.get("LD_PRELOAD", "")
        env["LD_PRELOAD"] = preload if PRELOAD in preload else PRELOAD + (":" + preload if preload else "")
        env["UMOCKDEV_DIR"] = self.root
        env.update(extra or {})
        return env

    def run(self, cmd: list[str], env: dict | None = None) -> Run:
        process = subprocess.Popen(cmd, env=self.env(env), stdout=subprocess.PIPE, text=True)
        run = Run(self, process)
        self.runs.append(run)
        return run

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            while self.context.pending():
                self.context.iteration(False)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.005))

    def close(self) -> None:
        for run in self.runs:
            run.stop()
        self.open_watch.close()
        root = self.root
        del self.bed
        shutil.rmtree(root, ignore_errors=True)
