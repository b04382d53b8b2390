"""MQTT security: the shipped password file and ACL, TLS, and credentials that never leak."""

from __future__ import annotations

import asyncio
import logging
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from drivers.mqtt.credentials import CredentialsError, resolve_credentials
from drivers.mqtt.link import BrokerSettings, MqttLink
from ems.config import load_portfolio
from ems.devices import controller_broker
from tests.conftest import REPO
from tests.mqtt_fixtures import run_rig
from tests.tls_fixtures import make_certificates

SHIPPED = REPO / "config/mosquitto"
CONTROLLER = {"username": "ems-controller", "password": SecretStr("controller-example-only")}
DEVICE = {"username": "twin", "password": SecretStr("twin-example-only")}


@pytest.fixture
def secured_broker(mosquitto_factory):
    return mosquitto_factory(password_file=SHIPPED / "passwd", acl_file=SHIPPED / "acl")


def publish_as(broker, username: str, password: str, topic: str, payload: str) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{username}-intruder")
    client.username_pw_set(username, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(2)
    client.disconnect()
    client.loop_stop()


def test_only_the_controller_may_command_a_device(secured_broker):
    async def scenario(rig):
        ack = await rig.driver.write(-3.0)
        forged = '{"id": "forged-1", "power_kw": 6.0}'
        await asyncio.to_thread(
            publish_as, secured_broker, "observer", "observer-example-only", "arao/c1/command", forged
        )
        await asyncio.to_thread(publish_as, secured_broker, "twin", "twin-example-only", "arao/c1/command", forged)
        await asyncio.sleep(0.5)
        return ack, rig.device.commands_applied, rig.charger.setpoint_kw, await rig.driver.read()

    ack, applied, setpoint, reading = run_rig(
        secured_broker, scenario, controller=CONTROLLER, device=DEVICE, root="arao"
    )
    assert ack.applied_kw == pytest.approx(-3.0)
    assert applied == 1 and setpoint == pytest.approx(-3.0)  # neither forged command arrived
    assert reading.power_kw == pytest.approx(-3.0)


def test_wrong_password_is_refused_without_echoing_it(secured_broker, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "not-the-password-4711"
    link = MqttLink(
        BrokerSettings(
            host=secured_broker.host,
            port=secured_broker.port,
            client_id="ems-controller",
            username="ems-controller",
            password=SecretStr(secret),
        )
    )
    link.start()
    deadline = time.monotonic() + 3
    while link.last_error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    link.stop()
    assert not link.connected.is_set()
    assert link.last_error and "refused" in link.last_error
    assert secret not in link.last_error and secret not in repr(link.settings)
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_credentials_come_from_environment_or_file_and_errors_name_only_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("ARAO_MQTT_USER", "ems-controller")
    monkeypatch.setenv("ARAO_MQTT_PASSWORD", "s3cret-from-env")
    user, password = resolve_credentials("ARAO_MQTT_USER", "ARAO_MQTT_PASSWORD", None)
    assert user == "ems-controller" and password.get_secret_value() == "s3cret-from-env"
    assert "s3cret" not in repr(password)

    creds = tmp_path / "controller.credentials"
    creds.write_text("ems-controller:s3cret-from-file\n")
    user, password = resolve_credentials(None, None, creds)
    assert password.get_secret_value() == "s3cret-from-file"

    monkeypatch.delenv("ARAO_MQTT_PASSWORD")
    with pytest.raises(CredentialsError, match="'ARAO_MQTT_PASSWORD'") as missing:
        resolve_credentials("ARAO_MQTT_USER", "ARAO_MQTT_PASSWORD", None)
    assert "ems-controller" not in str(missing.value)
    creds.write_text("no separator here\n")
    with pytest.raises(CredentialsError, match="user:password") as malformed:
        resolve_credentials(None, None, creds)
    assert "separator" not in str(malformed.value)


def test_config_credentials_file_is_resolved_relative_to_the_config(tmp_path):
    (tmp_path / "controller.credentials").write_text("ems-controller:from-file\n")
    config = tmp_path / "arao.toml"
    text = (
        (REPO / "config/arao.toml")
        .read_text()
        .replace('credentials_file = "mosquitto/controller.credentials"', 'credentials_file = "controller.credentials"')
    )
    config.write_text(text)
    broker = controller_broker(load_portfolio(config), config)
    assert broker.username == "ems-controller" and broker.password.get_secret_value() == "from-file"
    assert "from-file" not in repr(broker)


def test_set_points_over_tls_with_passwords_and_acl(mosquitto_factory, tmp_path):
    certs = make_certificates(tmp_path)
    broker = mosquitto_factory(
        password_file=SHIPPED / "passwd",
        acl_file=SHIPPED / "acl",
        listener_options=(
            f"cafile {certs['ca.crt']}",
            f"certfile {certs['server.crt']}",
            f"keyfile {certs['server.key']}",
        ),
    )
    tls = {"tls": True, "ca_file": certs["ca.crt"]}

    async def scenario(rig):
        return await rig.driver.write(-2.0), await rig.driver.read()

    ack, reading = run_rig(broker, scenario, controller={**CONTROLLER, **tls}, device={**DEVICE, **tls}, root="arao")
    assert ack.applied_kw == pytest.approx(-2.0) and reading.power_kw == pytest.approx(-2.0)

    # Without TLS the same credentials get no session on the TLS listener.
    plain = MqttLink(BrokerSettings(host=broker.host, port=broker.port, client_id="plain", **CONTROLLER))
    plain.start()
    assert not plain.wait_connected(1.0)
    plain.stop()
