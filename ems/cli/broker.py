"""``ems broker``: a private Mosquitto for a portfolio, with the shipped users and ACL.

It runs ``/usr/sbin/mosquitto`` on ``[mqtt].host:[mqtt].port`` with a password file and an ACL
(by default ``mosquitto/passwd`` and ``mosquitto/acl`` beside the portfolio file), anonymous
clients refused, and TLS when ``[mqtt].tls`` is set. Nothing under /etc/mosquitto is read or
changed: the broker's configuration is written to a private temporary directory, with a copy
of the password file readable by its owner only (Mosquitto warns about, and later versions
refuse, a password file others can read). It runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ems.config import load_portfolio

MOSQUITTO = "/usr/sbin/mosquitto"


def register(subparsers) -> None:
    parser = subparsers.add_parser("broker", help="run a private Mosquitto broker with the portfolio's users and ACL")
    parser.add_argument("--config", required=True, type=Path, help="portfolio TOML file ([mqtt] says where to listen)")
    parser.add_argument("--port", type=int, help="override [mqtt].port")
    parser.add_argument(
        "--password-file", type=Path, help="Mosquitto password file (default: mosquitto/passwd beside the config)"
    )
    parser.add_argument("--acl-file", type=Path, help="Mosquitto ACL file (default: mosquitto/acl beside the config)")
    parser.add_argument("--certfile", type=Path, help="server certificate (PEM), needed when [mqtt].tls = true")
    parser.add_argument("--keyfile", type=Path, help="server private key (PEM), needed when [mqtt].tls = true")
    parser.add_argument(
        "--require-certificate",
        action="store_true",
        help="with TLS: clients must present a certificate signed by [mqtt].ca_file",
    )
    parser.add_argument(
        "--persistence",
        type=Path,
        metavar="DIR",
        help="keep sessions, queued QoS 1 messages and retained messages in DIR across restarts",
    )
    parser.add_argument("--print-config", action="store_true", help="print the broker configuration and exit")
    parser.set_defaults(handler=run)


class BrokerSetupError(ValueError):
    """Something the broker needs is missing; names it."""


def broker_config(args: argparse.Namespace, work: Path) -> str:
    """mosquitto.conf text for the portfolio's broker; copies the password file into ``work``."""
    portfolio = load_portfolio(args.config)
    mqtt = portfolio.mqtt
    base = args.config.parent
    password_file = args.password_file or base / "mosquitto/passwd"
    acl_file = args.acl_file or base / "mosquitto/acl"
    for what, path in (("password file", password_file), ("ACL file", acl_file)):
        if not path.is_file():
            raise BrokerSetupError(f"{what} {str(path)!r} does not exist")
    private_passwd = work / "passwd"
    shutil.copyfile(password_file, private_passwd)
    private_passwd.chmod(0o600)
    port = args.port or mqtt.port
    lines = [
        "# written by `ems broker` for " + str(args.config),
        "per_listener_settings false",
        "allow_anonymous false",
        f"# a private copy (mode 0600) of {password_file}",
        f"password_file {private_passwd}",
        f"acl_file {acl_file.resolve()}",
        *(
            [f"persistence true\npersistence_location {args.persistence.resolve()}/\nautosave_interval 5"]
            if getattr(args, "persistence", None)
            else ["persistence false"]
        ),
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        f"listener {port} {mqtt.host}",
    ]
    if mqtt.tls:
        if not (args.certfile and args.keyfile and mqtt.ca_file):
            raise BrokerSetupError("[mqtt].tls = true needs --certfile, --keyfile and [mqtt].ca_file")
        lines += [
            f"cafile {(base / mqtt.ca_file).resolve()}",
            f"certfile {args.certfile.resolve()}",
            f"keyfile {args.keyfile.resolve()}",
            "tls_version tlsv1.2",
        ]
        if args.require_certificate:
            lines.append("require_certificate true")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # As root Mosquitto would switch to user 'mosquitto', who cannot read the private copy.
        lines.append("user root")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    mosquitto = shutil.which("mosquitto") or MOSQUITTO
    if not Path(mosquitto).exists():
        print("ems broker: mosquitto is not installed (Debian: apt-get install mosquitto)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ems-broker-") as directory:
        work = Path(directory)
        try:
            text = broker_config(args, work)
        except BrokerSetupError as error:
            print(f"ems broker: {error}", file=sys.stderr)
            return 2
        if args.print_config:
            print(text, end="")
            return 0
        conf = work / "mosquitto.conf"
        conf.write_text(text)
        portfolio = load_portfolio(args.config)
        port = args.port or portfolio.mqtt.port
        scheme = "mqtts" if portfolio.mqtt.tls else "mqtt"
        print(
            f"broker for {args.config}: {scheme}://{portfolio.mqtt.host}:{port}, anonymous refused, "
            f"users and ACL from {(args.acl_file or args.config.parent / 'mosquitto/acl').parent}; stop with Ctrl-C",
            flush=True,
        )
        process = subprocess.Popen([mosquitto, "-c", str(conf)])
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: process.terminate())
        code = process.wait()
    if code != 0:
        print(f"ems broker: mosquitto exited with code {code} (is port {port} already in use?)", file=sys.stderr)
        return 1
    print("broker stopped")
    return 0
