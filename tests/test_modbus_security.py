"""Modbus/TCP Security against the twin: TLS 1.2+ with client certificates (real certificates made
by openssl in the test). A client with a certificate of the twin's CA reads and writes; a client
without one, with one from another CA, or speaking plain Modbus TCP is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl

import pytest

from drivers import registry
from drivers.api import DeviceUnavailable, Quality
from drivers.modbus.security import ClientTls, TlsError, client_context
from drivers.sim.clock import ManualClock
from ems.config import ConfigError, load_portfolio
from ems.devices import endpoints
from tests.conftest import REPO

TOKYO = dt.timezone(dt.timedelta(hours=9))


def tls_config(tmp_path, pki, **overrides) -> object:
    """The reference portfolio with its Modbus devices behind TLS; paths relative to the file."""
    files = {
        "ca_file": "ca.crt",
        "server_cert_file": "server.crt",
        "server_key_file": "server.key",
        "client_cert_file": "client.crt",
        "client_key_file": "client.key",
        **overrides,
    }
    for name in ("ca", "server", "client"):
        for suffix in ("crt", "key"):
            (tmp_path / f"{name}.{suffix}").write_bytes((pki.directory / f"{name}.{suffix}").read_bytes())
    table = "".join(f'{key} = "{value}"\n' for key, value in files.items())
    config = tmp_path / "arao.toml"
    config.write_text((REPO / "config/arao.toml").read_text() + "\n[twin.modbus_tls]\n" + table)
    return config


def battery_driver(portfolio, **tls):
    endpoint = next(e for e in endpoints(portfolio) if e.asset_id == "city_hall_bess")
    settings = dict(endpoint.settings)
    if tls:
        settings["tls"] = tls
    else:
        settings.pop("tls", None)
    return registry.create(endpoint.driver, {**settings, "timeout_s": 1.0, "retries": 0})


def test_tls_read_and_write_with_a_client_certificate_and_refusals_without_one(tmp_path, test_pki, twin_factory):
    config = tls_config(tmp_path, test_pki)
    portfolio = load_portfolio(config)
    assert portfolio.twin.modbus_tls.ca_file == str(tmp_path / "ca.crt")  # resolved beside the config
    clock = ManualClock(dt.datetime(2026, 4, 15, 12, 0, tzinfo=TOKYO))
    runner = twin_factory(config, None, clock=clock, portfolio=portfolio)
    served = runner.twin.portfolio
    battery = runner.twin.physics["city_hall_bess"]
    assert next(e for e in endpoints(served) if e.asset_id == "city_hall_bess").where.startswith(
        "modbus+tls://127.0.0.1:"
    )

    async def scenario():
        trusted = battery_driver(
            served,
            ca_file=test_pki.path("ca.crt"),
            cert_file=test_pki.path("client.crt"),
            key_file=test_pki.path("client.key"),
        )
        no_certificate = battery_driver(served)  # plain Modbus TCP on the TLS port
        stranger = battery_driver(
            served,
            ca_file=test_pki.path("ca.crt"),
            cert_file=test_pki.path("stranger.crt"),
            key_file=test_pki.path("stranger.key"),
        )
        try:
            before = await trusted.read()
            ack = await trusted.write(-20.0)
            after = await trusted.read()
            plain = await no_certificate.read()
            foreign = await stranger.read()
            refused_writes = []
            for client in (no_certificate, stranger):
                try:
                    await client.write(30.0)
                except DeviceUnavailable as error:
                    refused_writes.append(error.reason)
            return before, ack, after, plain, foreign, refused_writes
        finally:
            for client in (trusted, no_certificate, stranger):
                await client.close()

    before, ack, after, plain, foreign, refused_writes = asyncio.run(scenario())
    assert before.quality is Quality.GOOD and before.soc_fraction == pytest.approx(0.5, abs=0.001)
    assert ack.applied_kw == pytest.approx(-20.0)
    assert after.setpoint_kw == pytest.approx(-20.0) and battery.setpoint_kw == pytest.approx(-20.0)
    assert plain.quality is Quality.MISSING and foreign.quality is Quality.MISSING
    assert len(refused_writes) == 2
    assert battery.setpoint_kw == pytest.approx(-20.0)  # neither refused client moved it


def test_a_client_context_requires_tls12_and_checks_the_device_certificate(test_pki):
    context = client_context(
        ClientTls(
            ca_file=test_pki.path("ca.crt"), cert_file=test_pki.path("client.crt"), key_file=test_pki.path("client.key")
        )
    )
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    with pytest.raises(TlsError, match="client.key"):  # a key that does not match its certificate
        client_context(
            ClientTls(
                ca_file=test_pki.path("ca.crt"),
                cert_file=test_pki.path("server.crt"),
                key_file=test_pki.path("client.key"),
            )
        )


def test_a_missing_certificate_file_stops_the_config_naming_the_key(tmp_path, test_pki):
    config = tls_config(tmp_path, test_pki, client_key_file="nowhere/client.key")
    with pytest.raises(ConfigError) as error:
        load_portfolio(config)
    assert "twin.modbus_tls.client_key_file" in str(error.value) and "nowhere/client.key" in str(error.value)
