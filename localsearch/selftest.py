"""`localsearch self-test`: proof that this installation works on this machine.

Indexes a few sample notes in a temporary folder with the default model (the one inside
the app, or the one `make setup` built), through the same engine child the app uses,
then asks questions that share no keyword with their answers and checks the answers.
Nothing of the user's is read or written: all state lives in a temporary home.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from localsearch import __version__, paths
from localsearch.errors import LocalSearchError
from localsearch.launch import is_frozen

if TYPE_CHECKING:
    from localsearch.core.embedding import Embedder

SAMPLES = {
    "cake.txt": "To bake a sponge cake, whisk eggs with sugar until pale, fold in flour and "
    "put the tin in a hot oven for twenty-five minutes.",
    "tides.txt": "Twice a day the ocean rises and falls along the coast, pulled by the gravity "
    "of the Moon and, less strongly, the Sun.",
    "invoice.txt": "Invoice 2024-117: three consulting days at the agreed daily rate, payable "
    "within thirty days by bank transfer.",
    "bicycle.txt": "Mending a flat tyre: take the wheel off, find the puncture in the inner tube, "
    "roughen the rubber around it and glue a patch on.",
}
# Embedded and reported (as `probe`) so that two runs can be compared, e.g. the app on an
# emulated older CPU against this one (packaging/linux/smoke.sh).
PROBE = "A quiet walk through the old botanical garden after the rain."
# (question, the sample that answers it): the words differ, so only the model can match them.
QUESTIONS = (
    ("how do I make a dessert", "cake.txt"),
    ("why does the sea level change during the day", "tides.txt"),
    ("repairing a punctured bike", "bicycle.txt"),
    ("money owed for advisory work", "invoice.txt"),
)

Say = Callable[[str], None]


@dataclass
class SelfTestResult:
    ok: bool
    reason: str = ""
    model: str = ""
    cpu_variant: str = ""
    cpu_features: str = ""
    gpu_offload: bool = False  # a GPU backend (Metal on Apple silicon) is available
    seconds: float = 0.0
    in_process: bool = False
    probe: list[float] = field(default_factory=list)  # PROBE's embedding
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # question, expected, got


@contextlib.contextmanager
def _temporary_home(home: Path) -> Iterator[None]:
    """LOCALSEARCH_HOME pointed at `home` for this process and its children."""
    saved = os.environ.get(paths.HOME_ENV)
    os.environ[paths.HOME_ENV] = str(home)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(paths.HOME_ENV, None)
        else:
            os.environ[paths.HOME_ENV] = saved


def default_model_path() -> Path:
    """The default model as installed: inside the app when frozen, else built by `make setup`
    (or `localsearch models build`). Never builds or downloads: a self-test reports."""
    from localsearch.core.models.default import DEFAULT_MODEL, bundled_model
    from localsearch.core.models.manager import find_model_file

    if is_frozen():
        bundled = bundled_model()
        if bundled is None:
            raise LocalSearchError("the app's default model is missing from the bundle; reinstall it")
        return bundled
    return find_model_file(DEFAULT_MODEL, build_default=False).path


def run(say: Say = print, *, in_process: bool = False) -> SelfTestResult:
    """in_process: embed in this process instead of the engine child the app uses, for
    emulators that run one process (qemu-user does not follow exec)."""
    started = time.monotonic()
    result = SelfTestResult(ok=False, in_process=in_process)
    say(f"localsearch {__version__} ({'app bundle' if is_frozen() else 'source'}), "
        f"Python {platform.python_version()} on {platform.machine()} {sys.platform}")
    try:
        model = default_model_path()
    except LocalSearchError as exc:
        result.reason = f"no default model: {exc}"
        return result
    result.model = str(model)
    say(f"model: {model}")
    try:
        _index_and_ask(model, result, say)
    except LocalSearchError as exc:
        result.reason = str(exc)
    result.seconds = time.monotonic() - started
    return result


def _index_and_ask(model: Path, result: SelfTestResult, say: Say) -> None:
    from localsearch.core.embedding import cpu_backend, cpu_features, gpu_offload_available
    from localsearch.core.service import LocalSearch, default_embedder_factory
    from localsearch.settings import Settings

    with (
        tempfile.TemporaryDirectory(prefix="localsearch-selftest-") as tmp,
        _temporary_home(Path(tmp) / "home"),
    ):
        docs = Path(tmp) / "notes"
        docs.mkdir()
        for name, text in SAMPLES.items():
            (docs / name).write_text(text, encoding="utf-8")
        settings = Settings(model=str(model))
        def in_process(settings: Settings, for_queries: bool) -> Embedder:
            # The query engine, which stays in this process (service.default_embedder_factory).
            return default_embedder_factory(settings, True)

        factory = in_process if result.in_process else default_embedder_factory
        with LocalSearch(settings, db_path=paths.index_db_path(), embedder_factory=factory) as service:
            final = None
            for progress in service.index_paths([docs]):
                final = progress
            if final is None or final.files_indexed != len(SAMPLES) or final.files_failed:
                got = final.as_dict() if final else "nothing"
                result.reason = f"indexing the {len(SAMPLES)} samples went wrong: {got}"
                return
            say(f"indexed {final.files_indexed} sample files, {final.chunks_added} chunks")
            for question, expected in QUESTIONS:
                hits = service.search(question, 3, mode="semantic")
                got = hits[0].name if hits else "(nothing)"
                result.answers.append((question, expected, got))
                verdict = "ok   " if got == expected else f"WRONG (expected {expected})"
                say(f"  {verdict} {question!r} -> {got}")
            vector = service.embedder.embed_texts([PROBE])[0]
            result.probe = [round(float(x), 7) for x in vector]
        # Asked after the engine ran, so the backend that llama.cpp chose is loaded here too.
        result.cpu_variant = cpu_backend()
        result.cpu_features = cpu_features().strip()
        say(f"CPU backend: {result.cpu_variant}")
        say(f"CPU features: {result.cpu_features}")
        result.gpu_offload = gpu_offload_available()
        say(f"GPU offload: {'available' if result.gpu_offload else 'none (CPU only)'}")
    wrong = [a for a in result.answers if a[1] != a[2]]
    if wrong:
        result.reason = f"{len(wrong)} of {len(QUESTIONS)} questions answered wrongly"
        return
    result.ok = True
