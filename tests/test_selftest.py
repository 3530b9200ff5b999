"""`localsearch self-test` with the real default model: it answers its questions, names the
model and CPU code it used, touches no user state, and fails with a reason otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localsearch import launch, selftest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("default_model")
def test_self_test_passes_and_reports_model_and_cpu(isolated_home: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "localsearch", "self-test", "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["reason"] == ""
    assert Path(result["model"]).name.startswith("all-minilm-l6-v2.")
    assert result["cpu_variant"] not in ("", "unknown")
    assert "CPU" in result["cpu_features"]
    assert [got for _, _, got in result["answers"]] == [expected for _, expected in selftest.QUESTIONS]
    assert "CPU backend:" in done.stderr and "model:" in done.stderr
    # Its index lived in a temporary home: the user's (here the test's) home is untouched.
    assert not (isolated_home / "data" / "index.sqlite3").exists()


def test_self_test_fails_with_a_reason_when_the_model_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from localsearch import cli, paths

    # A frozen app whose bundle lost its model.
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", tmp_path / "empty")
    assert launch.is_frozen()
    assert cli.main(["self-test"]) == 1
    err = capsys.readouterr().err
    assert "self-test FAILED: no default model" in err and "reinstall" in err
