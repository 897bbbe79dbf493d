from pathlib import Path

import pytest

from fleetlink.contracts.topics import KafkaTopic
from fleetlink.errors import ConfigError
from fleetlink.settings import dump_toml, load_settings


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./fleetlink.toml from the developer's checkout


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_point_at_the_local_stack() -> None:
    settings = load_settings()
    assert settings.uses_local_kafka
    assert settings.uses_local_mqtt
    assert settings.kafka_bootstrap_servers() == "127.0.0.1:9092"
    assert settings.mqtt_address() == ("127.0.0.1", 1883)
    assert settings.stack.mqtt_max_queued_messages > 1000


def test_three_brokers_give_three_bootstrap_servers() -> None:
    settings = load_settings(stack={"brokers": 3, "kafka_port": 7000})
    assert settings.kafka_bootstrap_servers() == "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"


def test_environment_beats_file_and_flags_beat_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "f.toml", "[stack]\nmqtt_port = 2000\nkafka_port = 3000\nbrokers = 3\n"
    )
    monkeypatch.setenv("FLEETLINK_STACK__MQTT_PORT", "2001")
    monkeypatch.setenv("FLEETLINK_STACK__KAFKA_PORT", "3001")
    settings = load_settings(config, stack={"kafka_port": 3002, "brokers": None})
    assert settings.stack.mqtt_port == 2001  # env over file
    assert settings.stack.kafka_port == 3002  # flag over env
    assert settings.stack.brokers == 3  # an unset flag leaves the file's value


def test_default_config_file_and_env_var_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "fleetlink.toml", '[mqtt]\nhost = "broker.example"\ntls = true\n')
    assert load_settings().mqtt_address() == ("broker.example", 8883)
    other = write(tmp_path / "other.toml", '[mqtt]\nhost = "b2.example"\nport = 1884\n')
    monkeypatch.setenv("FLEETLINK_CONFIG", str(other))
    assert load_settings().mqtt_address() == ("b2.example", 1884)


def test_external_kafka_with_sasl_builds_librdkafka_config(tmp_path: Path) -> None:
    config = write(
        tmp_path / "f.toml",
        "[kafka]\n"
        'bootstrap_servers = "k1.example:9093, k2.example:9093"\n'
        'security_protocol = "SASL_SSL"\n'
        'sasl_mechanism = "SCRAM-SHA-512"\n'
        'sasl_username = "fleet"\n'
        'sasl_password = "s3cret"\n',
    )
    settings = load_settings(config)
    assert not settings.uses_local_kafka
    client = settings.kafka_client_config()
    assert client["bootstrap.servers"] == "k1.example:9093,k2.example:9093"
    assert client["security.protocol"] == "SASL_SSL"
    assert client["sasl.mechanism"] == "SCRAM-SHA-512"
    assert client["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)  # secrets stay out of logs


@pytest.mark.parametrize(
    ("env", "value", "key", "fragment"),
    [
        ("FLEETLINK_STACK__MQTT_PORT", "abc", "stack.mqtt_port", "valid integer"),
        ("FLEETLINK_STACK__MQTT_PORT", "70000", "stack.mqtt_port", "less than or equal"),
        ("FLEETLINK_STACK__BROKERS", "2", "stack.brokers", "1 or 3"),
        ("FLEETLINK_KAFKA__BOOTSTRAP_SERVERS", "nohost", "kafka.bootstrap_servers", "host:port"),
        ("FLEETLINK_KAFKA__SECURITY_PROTOCOL", "SASL_SSL", "kafka", "sasl_mechanism"),
        ("FLEETLINK_MQTT__KEEPALIVE_S", "1", "mqtt.keepalive_s", "greater than or equal"),
        ("FLEETLINK_KAFKA__COLOUR", "blue", "kafka.colour", "unknown setting"),
    ],
)
def test_bad_environment_values_name_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str, fragment: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid configuration: {key}:")
    assert fragment in message
    assert "FLEETLINK_" in message


def test_bad_file_value_names_section_and_file(tmp_path: Path) -> None:
    config = write(tmp_path / "f.toml", "[stack]\nkafka_heap_mb = 10\nmqtt_portt = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert any("stack.kafka_heap_mb" in line and str(config) in line for line in lines)
    assert any("stack.mqtt_portt: unknown setting" in line for line in lines)


def test_overlapping_ports_are_refused() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        load_settings(stack={"brokers": 3, "kafka_port": 9000, "controller_port": 9002})
    with pytest.raises(ConfigError, match="overlap"):
        load_settings(stack={"mqtt_port": 8883, "mqtt_password_port": 8883})
    with pytest.raises(ConfigError, match="overlap"):
        load_settings(stack={"kafka_port": 9000, "mqtt_password_port": 9000})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")
    broken = write(tmp_path / "broken.toml", "[stack\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = write(tmp_path / "c.pem", "x")
    config = write(tmp_path / "f.toml", f'[mqtt]\ntls = true\ncert_file = "{cert}"\n')
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_settings(config)


def test_dump_toml_round_trips_and_masks_secrets(tmp_path: Path) -> None:
    settings = load_settings(
        kafka={
            "bootstrap_servers": "k:9093",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "u",
            "sasl_password": "hunter2",
        },
        gateway={"workers": 3},
    )
    masked = dump_toml(settings)
    assert "hunter2" not in masked
    path = write(tmp_path / "dumped.toml", dump_toml(settings, reveal_secrets=True))
    assert load_settings(path) == settings


def test_topic_keys_of_earlier_versions_stop_with_their_replacement(tmp_path: Path) -> None:
    config = tmp_path / "old.toml"
    config.write_text('[gateway]\ncommands_topic = "acme.commands"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert "gateway.commands_topic is gone" in message
    assert '[topics] names = {"fleet.commands" = "..."}' in message
    with pytest.raises(ConfigError, match=r"api\.audit_topic is gone"):
        load_settings(api={"audit_topic": "x"})


def test_topics_are_renamed_one_by_one_or_prefixed_all_together() -> None:
    renamed = load_settings(topics={"names": {"fleet.commands": "acme.car-commands"}})
    assert renamed.topic_map()[KafkaTopic.COMMANDS] == "acme.car-commands"
    assert renamed.topic_map()[KafkaTopic.TELEMETRY] == "fleet.telemetry"
    prefixed = load_settings(topics={"prefix": "staging"})
    assert prefixed.topic_map()[KafkaTopic.TELEMETRY] == "staging.fleet.telemetry"
    with pytest.raises(ConfigError, match="share one Kafka name"):
        load_settings(topics={"names": {"fleet.commands": "fleet.telemetry"}})
    with pytest.raises(ConfigError, match=r"topics\.names"):
        load_settings(topics={"names": {"fleet.nonsense": "x"}})
