"""Per-model limits: the context window and the largest ``max_tokens`` a model accepts.

Defaults follow the public model pages (Sonnet 4.6 and Opus 4.6: 1M context, 128K output;
Sonnet 4.5, Sonnet 4 and Haiku 4.5: 200K context, 64K output; Opus 4 and 4.1: 200K, 32K). A
script overrides or adds models with ``limits:`` (a scenario can make a window small). A dated
id (``claude-sonnet-4-5-20250929``) takes the limits of its undated name. A model without
limits is not checked. Texts, as the real API answers them:

- ``max_tokens: 200000 > 64000, which is the maximum allowed number of output tokens for
  claude-sonnet-4-5-20250929`` (the fake names the model as the request does);
- ``prompt is too long: 200251 tokens > 200000 maximum``, counted with the fake's token
  approximation (``_tokens``), the same count ``count_tokens`` and ``usage`` report.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from fake_servers.anthropic._errors import ApiError

__all__ = ["DEFAULT_LIMITS", "ModelLimits", "check_max_tokens", "check_prompt", "limits_for"]


class ModelLimits(BaseModel):
    """The limits of one model; an unset field is not checked."""

    # The attribute docstrings are the fields' descriptions in the JSON Schema.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    context_window: int | None = Field(default=None, ge=1)
    """Tokens a request's prompt may hold (a longer one is refused: prompt is too long)."""
    max_output_tokens: int | None = Field(default=None, ge=1)
    """The largest max_tokens a request may ask for."""
    cache_min_tokens: int = Field(default=1024, ge=0)
    """Shortest prefix (in tokens) that prompt caching stores."""


def _limits(window: int, output: int, cache_min: int = 1024) -> ModelLimits:
    return ModelLimits(context_window=window, max_output_tokens=output, cache_min_tokens=cache_min)


DEFAULT_LIMITS: dict[str, ModelLimits] = {
    "claude-sonnet-4-6": _limits(1_000_000, 128_000),
    "claude-opus-4-6": _limits(1_000_000, 128_000),
    "claude-sonnet-4-5": _limits(200_000, 64_000),
    "claude-sonnet-4": _limits(200_000, 64_000),
    "claude-haiku-4-5": _limits(200_000, 64_000, 2048),
    "claude-opus-4-1": _limits(200_000, 32_000),
    "claude-opus-4": _limits(200_000, 32_000),
}
_DATED = re.compile(r"-\d{8}$")


def limits_for(model: str, overrides: dict[str, ModelLimits]) -> ModelLimits | None:
    """The limits of ``model``: the script's first, then the defaults; dated ids fall back."""
    for name in (model, _DATED.sub("", model)):
        found = overrides.get(name) or DEFAULT_LIMITS.get(name)
        if found is not None:
            return found
    return None


def check_max_tokens(model: str, max_tokens: int, limits: ModelLimits | None) -> None:
    if limits is None or limits.max_output_tokens is None:
        return
    if max_tokens > limits.max_output_tokens:
        raise ApiError(
            400,
            f"max_tokens: {max_tokens} > {limits.max_output_tokens}, which is the maximum "
            f"allowed number of output tokens for {model}",
        )


def check_prompt(tokens: int, limits: ModelLimits | None) -> None:
    if limits is None or limits.context_window is None:
        return
    if tokens > limits.context_window:
        raise ApiError(
            400, f"prompt is too long: {tokens} tokens > {limits.context_window} maximum"
        )
