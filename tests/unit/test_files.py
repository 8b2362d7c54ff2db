"""harness._files.check_writable_dir: refuses what cannot take files, leaves nothing it made."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._files import check_writable_dir
from harness.errors import ConfigError


def test_a_relative_name_too_long_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="cannot write runs here: File name too long"):
        check_writable_dir(Path("x" * 300) / "runs", what="runs", option="--out")
    assert list(tmp_path.iterdir()) == []


def test_a_directory_it_created_is_removed_again(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "a" / "b", what="runs", option="--out")
    assert list(tmp_path.iterdir()) == []


def test_a_directory_another_command_wrote_into_meanwhile_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two commands started at once with one new --out: the other one's first run directory
    # appears while this one probes. Neither is refused, and nothing of the other's goes.
    out = tmp_path / "runs"
    unlink = Path.unlink

    def unlink_then_other_writes(self: Path, missing_ok: bool = False) -> None:
        unlink(self, missing_ok=missing_ok)
        if self.parent == out:
            (out / "other-run").mkdir(exist_ok=True)

    monkeypatch.setattr(Path, "unlink", unlink_then_other_writes)
    check_writable_dir(out, what="runs", option="--out")
    assert [p.name for p in out.iterdir()] == ["other-run"]
