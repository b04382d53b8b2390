"""A free UDP port and a private loopback network for ECHONET Lite tests, so runs do not hear each other."""

from __future__ import annotations

import random
import socket


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_network() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.0/24"
