"""ModelSpec: the configured model resolved once from the settings and the catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from localsearch import paths
from localsearch.core.embedding import EngineOptions
from localsearch.core.models import manager
from localsearch.core.models.gguf_io import inspect_gguf
from localsearch.core.models.spec import model_prompts, resolve_model, space_key
from localsearch.core.service import LocalSearch
from localsearch.errors import ModelError
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder

MXBAI_PROMPT = "Represent this sentence for searching relevant passages: "


def _settings(**values: object) -> Settings:
    return dataclasses.replace(Settings(), **values)  # type: ignore[arg-type]


def _stand_in(name: str, default_model: Path) -> Path:
    """The default model's file under another catalog model's name: resolution reads names,
    prompts and layer counts, which are the point here, not the weights."""
    folder = paths.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.Q8_0.gguf"
    target.symlink_to(default_model)
    return target


def test_prompts_follow_the_model_whatever_its_spelling() -> None:
    expected = model_prompts("mxbai-embed-xsmall-v1")
    assert expected[0] == MXBAI_PROMPT
    for spelling in (
        "MXBAI-EMBED-XSMALL-V1",
        "mxbai-embed-xsmall-v1.Q4_K_M",
        "/m/mxbai-embed-xsmall-v1.Q8_0.L4.gguf",
    ):
        assert model_prompts(spelling) == expected
    assert model_prompts("all-minilm-l6-v2") == ("", "")
    assert model_prompts("no-such-model") == ("", "")


def test_minilm_resolves_to_its_file_without_prompts_adapters_or_head(default_model: Path) -> None:
    settings = _settings(chunk_tokens=200)
    spec = resolve_model(settings)
    assert spec.path == manager.find_model_file("all-minilm-l6-v2").path
    assert spec.entry is not None and spec.entry.name == "all-minilm-l6-v2"
    assert (spec.query_prompt, spec.document_prompt, dict(spec.adapters)) == ("", "", {})
    assert (spec.head, spec.head_size, spec.layers, spec.dimensions) == (None, 0, 0, 0)
    assert (spec.context, spec.pooling) == (512, "mean")
    assert spec.space_key == "all-minilm-l6-v2+names" == space_key(settings)

    options = spec.engine_options(threads=1, max_tokens=settings.chunk_tokens)
    assert options == EngineOptions(spec.path, name="all-minilm-l6-v2", threads=1, max_tokens=200)


def test_nomic_gets_its_prompts_and_keeps_the_dimensions_asked(
    default_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A checkout's gguf/ may hold a real nomic build: look only in this test's home.
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", tmp_path / "no-checkout-gguf")
    file = _stand_in("nomic-embed-text-v1-5", default_model)
    settings = _settings(model="nomic-embed-text-v1.5", dimensions=256)
    spec = resolve_model(settings)
    assert spec.path == file
    assert (spec.query_prompt, spec.document_prompt) == ("search_query: ", "search_document: ")
    assert (spec.dimensions, spec.head_size, spec.context) == (256, 0, 2048)
    # Truncated vectors share the space key: the index keeps one space per stored size.
    assert spec.space_key == "nomic-embed-text-v1.5+names" == space_key(settings)
    options = spec.engine_options()
    assert (options.query_prefix, options.document_prefix) == ("search_query: ", "search_document: ")


def test_a_2d_matryoshka_model_runs_its_sliced_file_in_its_own_space(default_model: Path) -> None:
    _stand_in("mxbai-embed-2d-large-v1", default_model)
    settings = _settings(model="mxbai-embed-2d-large-v1", layers=4, late_chunking=True)
    spec = resolve_model(settings)
    assert spec.path.name == "mxbai-embed-2d-large-v1.Q8_0.L4.gguf"  # made on demand
    assert inspect_gguf(spec.path).block_count == 4
    assert spec.layers == 4 and spec.entry is not None and spec.entry.layer_truncation
    assert (spec.query_prompt, spec.pooling) == (MXBAI_PROMPT, "cls")
    assert spec.space_key == "mxbai-embed-2d-large-v1@4L+late" == space_key(settings)
    assert resolve_model(settings).path == spec.path  # the slice is kept, not made again


def test_an_unknown_model_is_refused_with_the_reason() -> None:
    with pytest.raises(ModelError, match="Unknown model"):
        resolve_model(_settings(model="no-such-model"))
    # The key alone needs no file: status() of an index made with a model since removed.
    assert space_key(_settings(model="no-such-model", layers=3)) == "no-such-model@3L+names"
    assert space_key(_settings(model="no-such-model", layers=3, file_names=False)) == "no-such-model@3L"


def test_the_service_resolves_its_model_once_and_keys_its_space_by_it(
    default_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = manager.resolve_model_file

    def counting(*args: object, **kwargs: object) -> Path:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(manager, "resolve_model_file", counting)
    with LocalSearch(_settings(layers=3), db_path=tmp_path / "index.sqlite3") as service:
        assert service.space_key == "all-minilm-l6-v2@3L+names"  # from the catalog: no file looked for
        assert calls == []
        spec = service.model()
        assert service.model() is spec and service.space_key == spec.space_key
        assert spec.path.name.endswith(".L3.gguf")
        assert service.embedder.model_path == spec.path  # the engine runs the spec's file
        assert service.space.model == spec.space_key
        assert len(calls) == 1
    # A test's own engine needs no model file at all.
    with LocalSearch(
        _settings(model="no-such-model"),
        db_path=tmp_path / "other.sqlite3",
        embedder_factory=lambda settings, queries: FakeEmbedder(),
    ) as service:
        assert service.embedder.dimensions == FakeEmbedder.dimensions
        assert service.space.dimensions == FakeEmbedder.dimensions
