"""Oracles: invariants checked on a run's record, each with a verdict, evidence and a sentence.

Oracles are public API: a scenario lists them by name, and ``harness check`` runs them on a
saved run. Register your own with ``@oracle("name", needs=[...])``: an oracle whose evidence
the record lacks answers "cannot judge", never "holds".
"""

from harness.oracles import blackbox as _blackbox  # noqa: F401  (registers the black-box oracles)
from harness.oracles import builtin as _builtin  # noqa: F401  (registers the built-in oracles)
from harness.oracles import scope_generic as _scope  # noqa: F401  (registers the scope oracles)
from harness.oracles._registry import NEEDS, ORACLES, Oracle, Verdict, check, oracle
from harness.oracles.load import load_record
from harness.oracles.record import EVIDENCE, RunRecord

__all__ = [
    "EVIDENCE",
    "NEEDS",
    "ORACLES",
    "Oracle",
    "RunRecord",
    "Verdict",
    "check",
    "load_record",
    "oracle",
]
