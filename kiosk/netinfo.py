"""This machine's IPv4 addresses for the admin panel, read from the kernel with an ioctl (no network I/O)."""

from __future__ import annotations

import array
import fcntl
import socket
import struct


def ip_addresses() -> list[str]:
    """This machine's IPv4 addresses per interface (loopback left out), read from the kernel; no network I/O."""
    siocgifaddr = 0x8915
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            request = array.array("B", struct.pack("256s", name.encode()[:15]))
            try:
                fcntl.ioctl(s.fileno(), siocgifaddr, request)
            except OSError:
                continue  # an interface without an IPv4 address
            found.append(f"{name} {socket.inet_ntoa(request.tobytes()[20:24])}")
    return found
