"""The process engine: same vectors as in process, and a real abort in the child costs
the batch in flight, names it, and the next call works."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from localsearch.core import engine_process
from localsearch.core.embedding import EngineCrashed, EngineInfo, EngineOptions, LlamaEmbedder
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.service import LocalSearch, default_embedder_factory
from localsearch.errors import ModelError
from localsearch.settings import Settings

TEXTS = ["the cat sat on the mat", "aspirin prevents strokes", "a third, longer sentence " * 30]


@pytest.fixture(scope="module")
def in_process(default_model: Path) -> Iterator[LlamaEmbedder]:
    embedder = LlamaEmbedder(default_model, max_tokens=256)
    yield embedder
    embedder.close()


def test_same_vectors_as_in_process(default_model: Path, in_process: LlamaEmbedder) -> None:
    with ProcessEmbedder(default_model, max_tokens=256, query_prefix="search_query: ") as engine:
        assert (engine.dimensions, engine.max_tokens, engine.special_tokens) == (384, 256, 2)
        assert engine.query_prefix_tokens == len(in_process.tokenize("search_query: "))
        assert engine.tokenize(TEXTS[0]) == in_process.tokenize(TEXTS[0])
        np.testing.assert_allclose(engine.embed_texts(TEXTS), in_process.embed_texts(TEXTS), atol=1e-6)
        as_query = engine.embed_tokens([engine.tokenize("aspirin")], role="query")[0]
        expected = in_process.embed_texts(["search_query: aspirin"])[0]
        assert float(as_query @ expected) > 0.99999
        tokens = in_process.tokenize(TEXTS[2])
        spans = [(0, 20), (20, len(tokens))]
        np.testing.assert_allclose(
            engine.embed_late(tokens, spans), in_process.embed_late(tokens, spans), atol=1e-6
        )
        assert engine.embed_tokens([]).shape == (0, 384)


def _through_json(value: EngineOptions | EngineInfo) -> dict:
    return dict(json.loads(json.dumps(value.to_json())))


def test_engine_options_travel_to_the_child_and_its_info_comes_back(
    default_model: Path, tmp_path: Path
) -> None:
    options = EngineOptions(
        default_model,
        name="minilm",
        threads=1,
        max_tokens=128,
        batch_tokens=512,
        max_sequences=4,
        flash_attention=False,
        query_prefix="search_query: ",
        document_prefix="search_document: ",
        adapter_scale=0.5,
        allow_missing_adapters=True,
        late_tokens=256,
        gpu=False,
        mmap=False,
    )
    # Every field survives the JSON the child reads, paths as paths.
    assert set(options.to_json()) == {f.name for f in fields(EngineOptions)}
    assert EngineOptions.from_json(_through_json(options)) == options
    with_files = replace(options, adapters={"query": tmp_path / "q.gguf"}, head=tmp_path / "h.safetensors")
    assert EngineOptions.from_json(_through_json(with_files)) == with_files
    # Keywords build the same options as the dataclass.
    assert (
        EngineOptions.of(default_model, **{f.name: getattr(options, f.name) for f in fields(options)})
        == options
    )

    here = LlamaEmbedder(options)
    try:
        with ProcessEmbedder(options) as child:
            assert child.options == options and child.name == "minilm"
            # What the child reports is what the same options give in this process.
            assert child.info == here.info and EngineInfo.from_json(_through_json(child.info)) == child.info
            assert (child.max_tokens, child.late_tokens, child.dimensions) == (128, 256, 384)
            assert child.query_prefix_tokens == len(here.tokenize("search_query: ")) > 0
            assert child.document_prefix_tokens == len(here.tokenize("search_document: ")) > 0
            # The document prompt went with it: the vectors are the prompted ones.
            np.testing.assert_allclose(child.embed_texts(TEXTS[:2]), here.embed_texts(TEXTS[:2]), atol=1e-6)
    finally:
        here.close()


def test_an_abort_costs_the_batch_in_flight_and_the_engine_restarts(
    default_model: Path, in_process: LlamaEmbedder
) -> None:
    poison = in_process.tokenize("zebra")[0]
    with ProcessEmbedder(default_model, max_tokens=256, abort_on_token=poison) as engine:
        first_child = engine.pid
        good = engine.embed_texts(TEXTS[:2])
        with pytest.raises(EngineCrashed) as crash:
            engine.embed_texts(["a zebra crossed the road"])
        message = str(crash.value)
        assert "a zebra crossed the road" in message
        if sys.platform != "win32":
            assert "SIGABRT" in message
        assert isinstance(crash.value, ModelError)  # a user-facing problem, not a bug
        # The next call starts a fresh child and gets the same answers as before.
        np.testing.assert_allclose(engine.embed_texts(TEXTS[:2]), good, atol=1e-6)
        assert engine.restarts == 1 and engine.pid != first_child
        # Inputs too long to share a batch: the one in flight is named, not its neighbours.
        with pytest.raises(EngineCrashed, match=r"input 2 of 2 \(200 tokens: 'zebra zebra"):
            engine.embed_texts(["fine " * 200, "zebra " * 200])
        with pytest.raises(EngineCrashed, match="inputs 1, 2 of 3, decoded together"):
            engine.embed_texts(["zebra", "short", "long " * 252])
        with pytest.raises(EngineCrashed, match="late chunking"):
            engine.embed_late(engine.tokenize("zebra crossing"), [(0, 2)])
        assert engine.embed_texts(["still alive"]).shape == (1, 384)


def test_a_model_that_cannot_load_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError):
        ProcessEmbedder(broken)
    with pytest.raises(ModelError, match="not found"):
        ProcessEmbedder(tmp_path / "missing.gguf")


def test_indexing_uses_the_process_engine_and_queries_stay_in_process(default_model: Path) -> None:
    settings = Settings()
    documents = default_embedder_factory(settings, False)
    queries = default_embedder_factory(settings, True)
    try:
        assert isinstance(documents, ProcessEmbedder)
        assert isinstance(queries, LlamaEmbedder)
        assert documents.max_tokens == queries.max_tokens == settings.chunk_tokens
    finally:
        for engine in (documents, queries):
            engine.close()  # type: ignore[attr-defined]


def test_a_file_that_kills_the_engine_is_recorded_and_indexing_goes_on(
    tmp_path: Path, default_model: Path, in_process: LlamaEmbedder
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Aspirin lowers the risk of stroke.")
    (folder / "b.txt").write_text("A zebra has black and white stripes.")
    (folder / "c.txt").write_text("The cat sat on the mat.")
    poison = in_process.tokenize("zebra")[0]

    def factory(settings: Settings, for_queries: bool = False) -> ProcessEmbedder:
        return ProcessEmbedder(default_model, max_tokens=settings.chunk_tokens, abort_on_token=poison)

    with LocalSearch(Settings(), db_path=tmp_path / "index.sqlite3", embedder_factory=factory) as service:
        progress = list(service.index_paths([folder]))[-1]
        assert progress.files_indexed == 2 and progress.files_failed == 1
        status = service.status()
        failed = status["failed"]
        assert isinstance(failed, list) and len(failed) == 1
        assert failed[0]["path"].endswith("b.txt")
        assert "stopped" in failed[0]["reason"] and "zebra" in failed[0]["reason"]
        assert status["chunks"] == 2


@pytest.fixture
def policy_not_set_by_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_process, "USER_OPENMP_WAIT", False)


def child_environment(engine: ProcessEmbedder) -> dict[str, str]:
    assert engine.pid is not None
    raw = Path(f"/proc/{engine.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the child's /proc environ")
@pytest.mark.usefixtures("policy_not_set_by_user")
def test_the_child_waits_as_the_policy_says(default_model: Path, in_process: LlamaEmbedder) -> None:
    with ProcessEmbedder(default_model, max_tokens=256, threads=2, wait_policy="spin") as engine:
        assert engine.spinning is True
        assert child_environment(engine)["GOMP_SPINCOUNT"] == engine_process.SPIN_COUNT
        spun = engine.embed_texts(TEXTS)
    with ProcessEmbedder(default_model, max_tokens=256, threads=2, wait_policy="sleep") as engine:
        assert engine.spinning is False
        environment = child_environment(engine)
        assert "GOMP_SPINCOUNT" not in environment
        assert environment["OMP_WAIT_POLICY"] == "PASSIVE"
        # How threads wait never changes what they compute.
        np.testing.assert_allclose(engine.embed_texts(TEXTS), spun, atol=1e-6)
    with pytest.raises(ValueError, match="wait_policy"):
        ProcessEmbedder(default_model, wait_policy="fast")


@pytest.mark.usefixtures("policy_not_set_by_user")
def test_auto_switches_between_requests_when_the_cores_fill_or_free(
    default_model: Path, in_process: LlamaEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = {"now": False}
    monkeypatch.setattr(engine_process.cpu_load, "cores_busy", lambda threads, own_running: busy["now"])
    # Once the child runs, its threads' waits for a core decide.
    monkeypatch.setattr(
        engine_process.cpu_load.RunDelayProbe, "share", lambda probe: 0.4 if busy["now"] else 0.02
    )
    monkeypatch.setattr(engine_process, "WAIT_RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(engine_process, "WAIT_RECHECK_STARTS", 0)
    with ProcessEmbedder(default_model, max_tokens=256, threads=2) as engine:
        assert engine.spinning is True
        first_child = engine.pid
        expected = engine.embed_texts(TEXTS)
        assert (engine.pid, engine.wait_switches) == (first_child, 0)
        busy["now"] = True
        np.testing.assert_allclose(engine.embed_texts(TEXTS), expected, atol=1e-6)
        assert engine.spinning is False and engine.wait_switches == 1
        assert engine.pid != first_child
        assert engine.restarts == 0  # a chosen restart is not a crash
        busy["now"] = False
        engine.embed_texts(TEXTS[:1])
        assert engine.spinning is True and engine.wait_switches == 2


@pytest.mark.usefixtures("policy_not_set_by_user")
def test_one_thread_never_spins(default_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_process.cpu_load, "cores_busy", lambda threads, own_running: False)
    with ProcessEmbedder(default_model, max_tokens=256, threads=1) as engine:
        assert engine.spinning is False


@pytest.mark.usefixtures("policy_not_set_by_user")
def test_going_back_to_spinning_takes_clearly_free_cores(
    default_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = {"now": 0.07}  # between the two bars
    monkeypatch.setattr(engine_process.cpu_load, "cores_busy", lambda threads, own_running: True)
    monkeypatch.setattr(engine_process.cpu_load.RunDelayProbe, "share", lambda probe: share["now"])
    monkeypatch.setattr(engine_process, "WAIT_RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(engine_process, "WAIT_RECHECK_STARTS", 0)
    with ProcessEmbedder(default_model, max_tokens=256, threads=2) as engine:
        assert engine.spinning is False  # the machine looked busy at start
        engine.embed_texts(TEXTS[:1])
        assert engine.spinning is False and engine.wait_switches == 0
        share["now"] = 0.01
        engine.embed_texts(TEXTS[:1])
        assert engine.spinning is True and engine.wait_switches == 1
        share["now"] = 0.07  # spinning keeps up to the full bar
        engine.embed_texts(TEXTS[:1])
        assert engine.spinning is True and engine.wait_switches == 1
