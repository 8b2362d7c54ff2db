"""Toxiproxy's toxics, one per module, and the registry that finds them by type name.

``TOXIC_TYPES`` maps Toxiproxy's ``type`` to the class; ``ToxicSpec.parse`` validates a toxic's
JSON (name, type, stream, toxicity, attributes) with Toxiproxy's defaults.
"""

from __future__ import annotations

from harness.faults.toxics._base import Toxic
from harness.faults.toxics._stub import ChunkChannel, StreamChunk, ToxicStub
from harness.faults.toxics.bandwidth import Bandwidth
from harness.faults.toxics.latency import Latency
from harness.faults.toxics.limit_data import LimitData
from harness.faults.toxics.reset_peer import ResetPeer
from harness.faults.toxics.slicer import Slicer
from harness.faults.toxics.slow_close import SlowClose
from harness.faults.toxics.spec import STREAMS, TOXIC_TYPES, ToxicSpec
from harness.faults.toxics.timeout import Timeout

__all__ = [
    "STREAMS",
    "TOXIC_TYPES",
    "Bandwidth",
    "ChunkChannel",
    "Latency",
    "LimitData",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "StreamChunk",
    "Timeout",
    "Toxic",
    "ToxicSpec",
    "ToxicStub",
]
