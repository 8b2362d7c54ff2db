"""Oracles: invariants checked on a run's record, each with a verdict, evidence and a sentence.

Oracles are public API: a scenario lists them by name, and ``harness check`` runs them on a
saved run. Register your own with ``@oracle("name", needs=[...])`` (or, with parameters from
the scenario, ``@parameterised("name", params=Model, needs=[...])``): an oracle whose evidence
the record lacks answers "cannot judge", never "holds".
"""

from harness.oracles import blackbox as _blackbox  # noqa: F401  (registers the black-box oracles)
from harness.oracles import builtin as _builtin  # noqa: F401  (registers the built-in oracles)
from harness.oracles import generic as _generic  # noqa: F401  (registers the generic oracles)
from harness.oracles import history_generic as _history  # noqa: F401  (registers history oracles)
from harness.oracles import mcp_generic as _mcp_generic  # noqa: F401  (MCP connection oracles)
from harness.oracles import scope_generic as _scope  # noqa: F401  (registers the scope oracles)
from harness.oracles._registry import (
    NEEDS,
    ORACLES,
    PARAMS,
    Oracle,
    Verdict,
    base_name,
    check,
    oracle,
    parameterised,
)
from harness.oracles.load import load_record
from harness.oracles.record import EVIDENCE, RunRecord

__all__ = [
    "EVIDENCE",
    "NEEDS",
    "ORACLES",
    "PARAMS",
    "Oracle",
    "RunRecord",
    "Verdict",
    "base_name",
    "check",
    "load_record",
    "oracle",
    "parameterised",
]
