"""Three fixes to Bumble 0.0.236's virtual controller and link so that Linux 6.1 (the VM's kernel) can
connect to, pair with and disconnect from the virtual peripherals. Each is a small override in our own code;
Bumble itself is installed unmodified from its pinned wheel.

1. `AddressedLink`: Bumble's `LocalLink.send_acl_data` tags LE ACL data with the sending controller's
   *random* address, while Linux connects from its *public* address; the peripheral then finds no
   connection for that address and drops every ATT request. The fix tags the data with the address the
   sender's connection to that peer actually uses.
2. `KernelFriendlyController.send_hci_packet`: Bumble reports new LE connections with the legacy LE
   Connection Complete event. Linux 6.1 asks for LE Enhanced Connection Complete (bit 9 of the LE event
   mask) when the controller offers LL Privacy or Extended Advertising, as Bumble's does, and waits for
   that event: the connection then times out and disconnects never complete. The fix sends the enhanced
   event whenever the host enabled it.
3. `KernelFriendlyController.on_hci_le_create_connection_cancel_command`: Bumble acknowledges LE Create
   Connection Cancel but never sends the connection complete event with status 0x02 (Unknown Connection
   Identifier) that must follow, so the kernel waits for it forever. The fix sends it, and answers Command
   Disallowed when no connection attempt is pending, as the Core specification (Vol 4, Part E, 7.8.13) says.

The overrides rely on Bumble internals (controller fields, the link's routing), so the version is checked.
"""
from __future__ import annotations

import asyncio
import logging

import bumble
from bumble import controller, core, hci, link

PINNED_BUMBLE = "0.0.236"
LE_ENHANCED_CONNECTION_COMPLETE_MASK_BIT = 1 << 9

logger = logging.getLogger("bumble_fixes")


def check_version() -> None:
    """Refuse to run on another Bumble: the overrides below patch its internals."""
    version = getattr(bumble, "__version__", None) or getattr(getattr(bumble, "_version", None), "version", None)
    if version != PINNED_BUMBLE:
        raise RuntimeError(f"bumble_fixes is written for Bumble {PINNED_BUMBLE}, found {version}. Fix: install "
                           f"scripts/bluetooth-vm/requirements.txt, or re-check every override before bumping")


class AddressedLink(link.LocalLink):
    """A `LocalLink` that tags LE ACL data with the address of the sender's connection to the destination."""

    def send_acl_data(self, sender_controller, destination_address, transport, data):  # noqa: D401
        if transport != core.PhysicalTransport.LE:
            return super().send_acl_data(sender_controller, destination_address, transport, data)
        connection = sender_controller.le_connections.get(destination_address)
        source_address = connection.self_address if connection else sender_controller.random_address
        destination_controller = self.find_le_controller(destination_address)
        if destination_controller is None:
            logger.warning("LE ACL data for %s: no controller on the link has that address", destination_address)
            return None
        asyncio.get_running_loop().call_soon(
            destination_controller.on_link_acl_data, source_address, transport, data)
        return None


class KernelFriendlyController(controller.Controller):
    """A Bumble controller whose LE connection events are the ones Linux 6.1 asks for."""

    def send_hci_packet(self, packet):
        if (isinstance(packet, hci.HCI_LE_Connection_Complete_Event)
                and self.le_event_mask & LE_ENHANCED_CONNECTION_COMPLETE_MASK_BIT):
            packet = hci.HCI_LE_Enhanced_Connection_Complete_Event(
                status=packet.status,
                connection_handle=packet.connection_handle,
                role=packet.role,
                peer_address_type=packet.peer_address_type,
                peer_address=packet.peer_address,
                local_resolvable_private_address=hci.Address.ANY_RANDOM,
                peer_resolvable_private_address=hci.Address.ANY_RANDOM,
                connection_interval=packet.connection_interval,
                peripheral_latency=packet.peripheral_latency,
                supervision_timeout=packet.supervision_timeout,
                central_clock_accuracy=packet.central_clock_accuracy,
            )
        return super().send_hci_packet(packet)

    def on_hci_le_create_connection_cancel_command(self, _command):
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        cancelled = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # Scheduled, so that the Command Complete the caller sends for this command goes out first.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, cancelled)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)
