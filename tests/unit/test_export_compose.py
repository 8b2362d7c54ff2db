"""``otel-collector.yaml`` and ``docker-compose.yml`` hold together (no Docker engine runs here):
pipelines reference defined components, ports line up, images are pinned, ports stay on
loopback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "otel-collector.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def test_every_pipeline_component_is_defined(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert list(pipelines) == ["traces"]
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in collector[section], f"{section}: {component} is not defined"
    # Defined components are all used (a typo would otherwise leave one silently idle).
    used = {c for p in pipelines.values() for s in p.values() for c in s}
    for section in ("receivers", "processors", "exporters"):
        assert set(collector[section]) <= used


def test_receivers_listen_on_the_otlp_ports(collector: dict[str, Any]) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"] == ["batch"]


def test_exporters_reach_jaeger_a_file_and_the_log(
    collector: dict[str, Any], compose: dict[str, Any]
) -> None:
    exporters = collector["exporters"]
    assert sorted(_type(e) for e in exporters) == ["debug", "file", "otlp_grpc"]
    (jaeger_id,) = [e for e in exporters if _type(e) == "otlp_grpc"]
    host, port = exporters[jaeger_id]["endpoint"].split(":")
    assert exporters[jaeger_id]["tls"] == {"insecure": True}
    assert host in compose["services"], "the OTLP exporter must name a compose service"
    assert port == "4317"
    assert port in [str(p) for p in compose["services"][host]["expose"]]
    # The file exporter writes into a volume the collector mounts.
    file_path = exporters["file"]["path"]
    mounts = [v.split(":")[1] for v in compose["services"]["collector"]["volumes"]]
    assert any(file_path.startswith(m.rstrip("/") + "/") for m in mounts)


def test_compose_publishes_the_expected_ports_on_loopback_only(compose: dict[str, Any]) -> None:
    published: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            address, host_port, container_port = str(mapping).split(":")
            assert address == "127.0.0.1", f"{name} publishes {mapping} beyond loopback"
            assert host_port == container_port
            published.setdefault(name, set()).add(container_port)
    assert {"4317", "4318"} <= published["collector"]
    assert "16686" in published["jaeger"]
    assert "8474" in published["toxiproxy"]


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in compose["services"].items()}
    assert images["collector"].startswith("otel/opentelemetry-collector-contrib:")
    assert images["jaeger"].startswith("cr.jaegertracing.io/jaegertracing/jaeger:2.")
    assert images["toxiproxy"].startswith("ghcr.io/shopify/toxiproxy:")
    for name, image in images.items():
        assert re.search(r":\d+\.\d+\.\d+$", image), f"{name}: {image} is not pinned to a version"
    # otlp_grpc exists from collector v0.144.0 on.
    version = tuple(int(x) for x in images["collector"].rsplit(":", 1)[1].split("."))
    assert version >= (0, 144, 0)


def test_the_collector_runs_this_config_and_its_volumes_exist(compose: dict[str, Any]) -> None:
    collector = compose["services"]["collector"]
    config = next(v for v in collector["volumes"] if v.startswith("./otel-collector.yaml:"))
    mounted_at = config.split(":")[1]
    assert f"--config={mounted_at}" in collector["command"]
    named = {v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])}
    named = {v for v in named if not v.startswith(".")}
    assert named <= set(compose["volumes"])
    for dependency in collector["depends_on"]:
        assert dependency in compose["services"]
