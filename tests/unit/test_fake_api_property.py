"""Malformed bodies and headers never make the fake API answer 500 or stop serving."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_servers.anthropic import Agent, FakeAnthropic, ModelScript, Turn

VALID = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi"}],
}
BASE_HEADERS = {
    "x-api-key": "k",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
ALLOWED = {200, 400, 401, 404, 405, 413}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
block_types = st.sampled_from(
    ["text", "tool_use", "tool_result", "image", "thinking", "banana", 7, None]
)
ids = st.sampled_from(["toolu_1", "toolu_2", "", 5, None])


@st.composite
def blocks(draw: st.DrawFn) -> Any:
    block: dict[str, Any] = {"type": draw(block_types)}
    for key, values in (
        ("text", st.text(max_size=6) | json_values),
        ("id", ids),
        ("tool_use_id", ids),
        ("name", st.text(max_size=4) | json_values),
        ("input", st.dictionaries(st.text(max_size=3), scalars, max_size=2) | json_values),
        ("content", st.text(max_size=6) | st.lists(json_values, max_size=2)),
        ("is_error", st.booleans() | json_values),
    ):
        if draw(st.booleans()):
            block[key] = draw(values)
    return block if draw(st.integers(0, 9)) else draw(json_values)


messages = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["user", "assistant", "system", ""]) | json_values,
            "content": st.text(max_size=6) | st.lists(blocks(), max_size=4) | json_values,
        },
    ),
    max_size=5,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.just("claude-sonnet-4-6") | json_values,
            "max_tokens": st.integers(-2, 10) | json_values,
            "messages": messages | json_values,
            "stream": st.booleans() | json_values,
            "system": st.text(max_size=20) | st.lists(blocks(), max_size=2) | json_values,
            "metadata": st.fixed_dictionaries({"user_id": json_values}) | json_values,
            "tools": json_values,
        },
    ),
)
header_text = st.text(alphabet=string.printable.strip(), max_size=30)
headers = st.dictionaries(
    st.sampled_from(
        ["x-api-key", "authorization", "anthropic-version", "content-type", "traceparent"]
    ),
    header_text,
    max_size=3,
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[anyio.from_thread.BlockingPortal, httpx2.AsyncClient]]:
    script = ModelScript(agents={"a": Agent(turns=[Turn(text="fine")], repeat=True)})
    fake = FakeAnthropic(script)
    # raise_app_exceptions: a crash inside the app fails the test instead of becoming a 500.
    transport = httpx2.ASGITransport(app=fake.app, raise_app_exceptions=True)
    client = httpx2.AsyncClient(transport=transport, base_url="http://fake")
    with anyio.from_thread.start_blocking_portal() as portal:
        yield portal, client
        portal.call(client.aclose)


def check(response: httpx2.Response) -> None:
    assert response.status_code in ALLOWED, response.text
    if response.status_code != 200:
        payload = response.json()
        assert payload["type"] == "error"
        assert payload["request_id"] == response.headers["request-id"]
        assert isinstance(payload["error"]["message"], str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies | st.binary(max_size=64),
    extra=headers,
    path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens", "/v1/x"]),
)
def test_malformed_requests_never_500_and_serving_continues(
    served: tuple[anyio.from_thread.BlockingPortal, httpx2.AsyncClient],
    body: Any,
    extra: dict[str, str],
    path: str,
) -> None:
    portal, client = served
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def exchange() -> None:
        check(await client.post(path, headers={**BASE_HEADERS, **extra}, content=content))
        healthy = await client.post("/v1/messages", headers=BASE_HEADERS, json=VALID)
        assert healthy.status_code == 200
        assert healthy.json()["content"] == [{"type": "text", "text": "fine"}]

    portal.call(exchange)
