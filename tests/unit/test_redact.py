"""Captured content passes through ``Redactor`` before it reaches a span attribute."""

from __future__ import annotations

import json
import re

from fake_servers.mcp.vault import SECRET_NAMES, secret_value
from harness.chaos_random import ChaosRandom
from harness.telemetry import redact
from harness.telemetry.redact import CREDENTIAL_PATTERNS, REDACTED, Redactor


def test_known_values_are_replaced_also_inside_json_strings() -> None:
    password = 'pa"ss\\word-0123'
    redact = Redactor([password, "short"])
    text = json.dumps({"value": password, "note": "short stays: it would match ordinary text"})
    out = redact(text)
    assert password not in out
    assert json.dumps(password)[1:-1] not in out
    assert out.count(REDACTED) == 1
    assert "short stays" in out
    assert json.loads(out)["value"] == REDACTED


def test_a_secret_containing_another_is_replaced_whole() -> None:
    out = Redactor(["abcdefgh", "abcdefgh-and-more"])("x abcdefgh-and-more y abcdefgh z")
    assert out == f"x {REDACTED} y {REDACTED} z"


def test_credential_shapes_are_caught_without_being_known() -> None:
    tokens = [
        "sk-ant-api03-" + "a" * 40,
        "ghp_" + "B" * 36,
        "sk_live_" + "c" * 24,
        "AKIA" + "D" * 16,
        "xoxb-1234567890-abcdef",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
    ]
    redact = Redactor()
    for token in tokens:
        assert redact(f"before {token} after") == f"before {REDACTED} after", token
    assert redact("skeleton key and ghp_short") == "skeleton key and ghp_short"


def test_every_fake_vault_value_is_redacted_known_or_not() -> None:
    rng = ChaosRandom(7)
    values = [secret_value(rng, name) for name in SECRET_NAMES]
    text = json.dumps({name: value for name, value in zip(SECRET_NAMES, values, strict=True)})
    assert all(v not in Redactor(values)(text) for v in values)
    # Unknown to the redactor, the token-shaped ones are still caught by their shape.
    shaped = Redactor()(text)
    caught = [n for n, v in zip(SECRET_NAMES, values, strict=True) if v not in shaped]
    assert {"github_token", "stripe_secret_key", "llm_api_key", "aws_access_key_id"} <= set(caught)


def test_known_values_are_asked_for_lazily_and_again_after_refresh() -> None:
    handed_out: list[str] = []
    redact = Redactor(lambda: handed_out)
    assert redact("token-0123456789") == "token-0123456789"
    handed_out.append("token-0123456789")
    assert redact("token-0123456789") == "token-0123456789"  # cached
    redact.refresh()
    assert redact("token-0123456789") == REDACTED


def _first_chars(pattern: str) -> set[str]:
    """The characters a match of ``pattern`` can start with: after an optional ``\\b``, one
    literal character or a group of literal alternatives (a pattern of another shape fails)."""
    body = pattern.removeprefix(r"\b")
    if body.startswith("(?:"):
        alternatives = body[3 : body.index(")")].split("|")
        assert all(re.fullmatch(r"[A-Za-z0-9]+", a) for a in alternatives), pattern
        return {a[0] for a in alternatives}
    assert re.match(r"[A-Za-z0-9-]", body), pattern
    return {body[0]}


def test_every_credential_pattern_starts_with_a_character_of_the_lookahead() -> None:
    # The combined regex only tries positions at these characters (a fast skip over the rest).
    for pattern in CREDENTIAL_PATTERNS:
        assert _first_chars(pattern) <= set(redact._FIRST_CHARS), pattern
    assert set().union(*map(_first_chars, CREDENTIAL_PATTERNS)) == set(redact._FIRST_CHARS)
