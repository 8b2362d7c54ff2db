"""A user's suite for ``pytester``, as strict as ours: any warning the plugin causes fails it."""

from __future__ import annotations

import pytest


def strict_inner_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        filterwarnings =
            error
            # The plugin is imported (an entry point) before pytest could rewrite it.
            ignore::pytest.PytestAssertRewriteWarning
        """
    )
