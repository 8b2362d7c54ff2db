"""The white-box oracles of the founding scenarios and their black-box forms, side by side."""

from __future__ import annotations

from harness.oracles import check
from harness.scenarios.runner import RunOutcome

# A white-box oracle (the reference runtime's own events) -> its form judged from the rig's
# records alone (API journal, fake servers' sessions, fault records).
BLACK_BOX_FORM = {
    "no_reconnect_while_in_flight": "no_teardown_under_calls",
    "at_most_one_reconnect_per_failure": "one_reconnect_per_failure",
    "no_leaked_processes": "no_duplicate_server_after_failure",
    "compaction_never_split_tool_pair": "tool_pairing_valid",
    "scheduled_scope_explicit": "scheduled_queries_scoped",
}


def pairs(outcome: RunOutcome, oracles: list[str]) -> list[tuple[str, str, str, str]]:
    """(white-box oracle, its status, black-box form, its status) for each of ``oracles``
    that has a black-box form, both judged on the run's record."""
    white = [name for name in oracles if name in BLACK_BOX_FORM]
    black = [BLACK_BOX_FORM[name] for name in white]
    verdicts = check(outcome.record, white + black)
    statuses = [v.status for v in verdicts]
    return [
        (w, statuses[i], b, statuses[len(white) + i])
        for i, (w, b) in enumerate(zip(white, black, strict=True))
    ]


def disagreements(outcome: RunOutcome, oracles: list[str]) -> list[tuple[str, str, str, str]]:
    return [pair for pair in pairs(outcome, oracles) if pair[1] != pair[3]]
