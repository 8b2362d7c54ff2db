"""Toxic definitions: Toxiproxy defaults, and clear errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError, FaultConfigError
from harness.faults.proxy._addresses import parse_address
from harness.faults.toxic_set import ToxicSet
from harness.faults.toxics import TOXIC_TYPES, Latency, ToxicSpec


def test_registry_knows_every_toxiproxy_type() -> None:
    assert sorted(TOXIC_TYPES) == [
        "bandwidth",
        "latency",
        "limit_data",
        "reset_peer",
        "slicer",
        "slow_close",
        "timeout",
    ]


def test_defaults_name_stream_and_toxicity() -> None:
    spec = ToxicSpec.parse({"type": "latency", "attributes": {"latency": 50}})
    assert spec.to_json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 50, "jitter": 0},
    }
    upstream = ToxicSpec.parse({"type": "timeout", "stream": "upstream", "toxicity": 0})
    assert (upstream.name, upstream.toxicity) == ("timeout_upstream", 0.0)


BAD_TOXICS: list[tuple[Any, str, str]] = [
    ({"type": "earthquake"}, "type", "invalid toxic type"),
    ({}, "type", "invalid toxic type"),
    ({"type": "latency", "attributes": {"latency": -1}}, "attributes.latency", "greater than"),
    ({"type": "latency", "attributes": {"latency": "slow"}}, "attributes.latency", "integer"),
    ({"type": "latency", "attributes": {"latency": 1.5}}, "attributes.latency", "integer"),
    ({"type": "bandwidth", "attributes": {"rate": True}}, "attributes.rate", "integer"),
    ({"type": "latency", "attributes": {"latancy": 5}}, "attributes.latancy", "unknown attr"),
    ({"type": "latency", "attributes": [1]}, "attributes", "JSON object"),
    ({"type": "latency", "toxicity": 1.5}, "toxicity", "between 0 and 1"),
    ({"type": "latency", "toxicity": -0.1}, "toxicity", "between 0 and 1"),
    ({"type": "latency", "toxicity": "0.5"}, "toxicity", "between 0 and 1"),
    ({"type": "latency", "stream": "sideways"}, "stream", "upstream or downstream"),
    ({"type": "latency", "name": 5}, "name", "string"),
    ({"type": "latency", "colour": "red"}, "colour", "unknown toxic field"),
]


@pytest.mark.parametrize(("data", "field", "message"), BAD_TOXICS)
def test_bad_toxics_name_the_field(data: Any, field: str, message: str) -> None:
    with pytest.raises(FaultConfigError) as caught:
        ToxicSpec.parse(data)
    assert caught.value.status == 400
    assert caught.value.field == field
    assert message in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_update_merges_attributes_and_keeps_type_and_stream() -> None:
    spec = ToxicSpec.parse({"type": "latency", "attributes": {"latency": 5, "jitter": 1}})
    changed = spec.updated({"attributes": {"latency": 9}, "toxicity": 0.5})
    assert changed.toxic == Latency(latency=9, jitter=1)
    assert changed.toxicity == 0.5
    with pytest.raises(FaultConfigError, match="stream cannot be changed"):
        spec.updated({"stream": "upstream"})
    with pytest.raises(FaultConfigError, match="greater than"):
        spec.updated({"attributes": {"jitter": -3}})


def test_toxic_set_statuses_and_generations() -> None:
    toxics = ToxicSet()
    spec = ToxicSpec.parse({"type": "latency"})
    toxics.add(spec)
    with pytest.raises(FaultConfigError) as duplicate:
        toxics.add(spec)
    assert duplicate.value.status == 409
    with pytest.raises(FaultConfigError) as missing:
        toxics.remove("nope")
    assert missing.value.status == 404
    before = toxics.chain("downstream")[0].generation
    toxics.replace(spec.updated({"attributes": {"latency": 1}}))
    assert toxics.chain("downstream")[0].generation > before
    assert toxics.chain("upstream") == []


@pytest.mark.parametrize(
    ("text", "listen", "expected"),
    [
        ("127.0.0.1:0", True, ("127.0.0.1", 0)),
        ("localhost:8080", True, ("127.0.0.1", 8080)),
        ("[::1]:9000", True, ("::1", 9000)),
        ("127.0.0.5:1", True, ("127.0.0.5", 1)),
        ("db.internal:5432", False, ("db.internal", 5432)),
    ],
)
def test_addresses(text: str, listen: bool, expected: tuple[str, int]) -> None:
    assert parse_address(text, field="listen", listen=listen) == expected


@pytest.mark.parametrize(
    ("text", "listen", "message"),
    [
        ("0.0.0.0:0", True, "loopback only"),
        ("[::]:0", True, "loopback only"),
        ("example.com:80", True, "loopback only"),
        (":8080", True, "no host"),
        ("127.0.0.1", True, "host:port"),
        ("127.0.0.1:http", True, "invalid port"),
        ("127.0.0.1:70000", True, "invalid port"),
        ("127.0.0.1:0", False, "invalid port"),
        (8080, False, "host:port"),
    ],
)
def test_bad_addresses(text: object, listen: bool, message: str) -> None:
    with pytest.raises(FaultConfigError, match=message) as caught:
        parse_address(text, field="listen", listen=listen)
    assert caught.value.field == "listen"
