"""The catalog file and the manager's names, choices and settings."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomli_w

from localsearch import paths
from localsearch import settings as settings_module
from localsearch.cli import main
from localsearch.core.models import manager
from localsearch.core.models.catalog import REQUIRED_FIELDS, Catalog, load_catalog
from localsearch.core.service import resolve_model_path
from localsearch.errors import ModelError
from tests.core.choose import use_model

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "gguf" / "catalog.toml"

ISSUE_MODELS = [
    "mxbai-embed-xsmall-v1",
    "all-MiniLM-L6-v2",
    "jina-embeddings-v2-small-en",
    "jina-embeddings-v2-base-en",
    "mxbai-embed-large-v1",
    "mxbai-embed-2d-large-v1",
    "jina-embeddings-v3",
    "nomic-embed-text-v1.5",
    "bge-small-en-v1.5",
    "snowflake-arctic-embed-xs",
    "stella_en_400M_v5",
    "stella_en_1.5B_v5",
]


def test_the_catalog_parses_and_every_entry_has_every_field() -> None:
    raw = tomllib.loads(SOURCE.read_text(encoding="utf-8"))
    for name, table in raw["models"].items():
        assert set(table) == set(REQUIRED_FIELDS), name
    catalog = load_catalog()
    assert len(catalog) == len(raw["models"])
    for display in ISSUE_MODELS:
        entry = catalog.get(display)
        assert entry.display_name == display
        assert entry.dimensions > 0 and entry.layers > 0 and entry.max_context > 0
        assert entry.license and entry.architecture and entry.hf_repo


def test_the_package_ships_the_same_catalog_text() -> None:
    from importlib import resources

    packaged = resources.files("localsearch.core.models").joinpath("catalog.toml").read_text(encoding="utf-8")
    assert packaged == SOURCE.read_text(encoding="utf-8")


def test_the_catalog_says_what_the_issue_asks() -> None:
    catalog = load_catalog()
    xsmall = catalog.get("mxbai-embed-xsmall-v1")
    assert (xsmall.dimensions, xsmall.architecture, xsmall.max_context) == (384, "bert", 4096)
    assert xsmall.query_prompt == "Represent this sentence for searching relevant passages: "
    assert xsmall.layer_truncation
    minilm = catalog.get("all-minilm-l6-v2")
    assert minilm.sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert minilm.matryoshka_dimensions is None and not minilm.layer_truncation
    small = catalog.get("jina-embeddings-v2-small-en")
    assert (small.dimensions, small.architecture, small.max_context, small.pooling) == (
        512,
        "jina-bert-v2",
        8192,
        "mean",
    )
    assert small.converter == "jina-bert-v2"
    for name in ("mxbai-embed-large-v1", "mxbai-embed-2d-large-v1"):
        assert (catalog.get(name).dimensions, catalog.get(name).layers) == (1024, 24)
    assert catalog.get("mxbai-embed-2d-large-v1").layer_truncation
    v3 = catalog.get("jina-embeddings-v3")
    assert v3.license.startswith("cc-by-nc-4.0") and v3.task_adapters
    assert v3.tasks == (
        "retrieval.query",
        "retrieval.passage",
        "separation",
        "classification",
        "text-matching",
    )
    assert v3.matryoshka_dimensions is not None and min(v3.matryoshka_dimensions) == 32
    nomic = catalog.get("nomic-embed-text-v1.5")
    assert (nomic.query_prompt, nomic.document_prompt) == ("search_query: ", "search_document: ")
    assert nomic.matryoshka_dimensions == (768, 512, 256, 128, 64)
    stella = catalog.get("stella_en_400M_v5")
    assert not stella.llama_cpp and "NewModel" in stella.reason
    alternative = catalog.get(stella.alternative)
    assert alternative.display_name == "stella_en_1.5B_v5" and alternative.usable
    assert alternative.architecture == "qwen2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("license"), "missing field"),
        (lambda e: e.update(layers="six"), "wrong type"),
        (lambda e: e.update(layers=True), "wrong type"),
        (lambda e: e.update(colour="blue"), "unknown field"),
        (lambda e: e.update(matryoshka_dimensions="some"), '"none"'),
        (lambda e: e.update(matryoshka_dimensions=[4096]), "between 1 and"),
        (lambda e: e.update(llama_cpp=False), "needs a reason"),
        (lambda e: e.update(sha256="abc"), "sha256"),
        (lambda e: e.update(pooling="max"), "pooling"),
        (lambda e: e.update(alternative="nowhere"), "alternative"),
    ],
)
def test_a_broken_entry_is_refused_with_its_name(change, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = tomllib.loads(SOURCE.read_text(encoding="utf-8"))
    entry = raw["models"]["all-minilm-l6-v2"]
    change(entry)
    with pytest.raises(ModelError, match="all-minilm-l6-v2") as info:
        Catalog.parse(tomli_w.dumps(raw))
    assert message in str(info.value)


def test_names_resolve_in_any_case_and_by_display_name() -> None:
    catalog = load_catalog()
    assert catalog.get("All-MiniLM-L6-v2").name == "all-minilm-l6-v2"
    assert catalog.get("nomic-embed-text-v1.5").name == "nomic-embed-text-v1-5"
    with pytest.raises(ModelError, match="Known models"):
        catalog.get("gpt-5")


@pytest.mark.parametrize(
    ("filename", "parsed"),
    [
        ("all-minilm-l6-v2.Q8_0.gguf", ("all-minilm-l6-v2", "Q8_0", None)),
        ("all-minilm-l6-v2.Q4_K_M.L3.gguf", ("all-minilm-l6-v2", "Q4_K_M", 3)),
        ("tiny.f16.gguf", ("tiny", "F16", None)),
        ("tiny.BF16.gguf", ("tiny", "BF16", None)),
        ("model.gguf", None),
        ("notes.Q8_0.txt", None),
    ],
)
def test_model_file_names(filename: str, parsed: tuple | None) -> None:
    assert manager.parse_filename(filename) == parsed


def test_dimension_and_layer_notes() -> None:
    catalog = load_catalog()
    nomic = catalog.get("nomic-embed-text-v1.5")
    assert nomic.dimension_note(256) == ""
    assert "not a trained size" in nomic.dimension_note(300)
    assert "not trained for truncation" in catalog.get("all-minilm-l6-v2").dimension_note(128)
    assert catalog.get("mxbai-embed-2d-large-v1").layer_note(12) == ""
    assert "layer truncation" in catalog.get("mxbai-embed-large-v1").layer_note(12)


def test_use_validates_writes_settings_and_builds_the_slice(default_model: Path) -> None:
    result = use_model("all-MiniLM-L6-v2", dimensions=128, layers=4)
    assert (result.model, result.dimensions, result.layers) == ("all-minilm-l6-v2", 128, 4)
    # Made in the models folder, or reused from a source checkout's gguf/ where one was made before.
    # A slice of the whole file in use (BF16 where the CPU runs it natively and it was built).
    in_use = manager.find_model_file("all-minilm-l6-v2").type
    assert result.file.name == f"all-minilm-l6-v2.{in_use}.L4.gguf" and result.file.is_file()
    assert result.file.parent in paths.model_search_dirs()
    assert any("truncation" in note for note in result.notes)
    saved = settings_module.load()
    assert (saved.model, saved.dimensions, saved.layers) == ("all-minilm-l6-v2", 128, 4)
    assert resolve_model_path(saved) == result.file

    for kwargs, message in (
        ({"dimensions": 385}, "384 dimensions"),
        ({"dimensions": -1}, "384 dimensions"),
        ({"layers": 7}, "6 layers"),
    ):
        with pytest.raises(ModelError, match=message):
            use_model("all-minilm-l6-v2", **kwargs)
    assert settings_module.load().layers == 4  # a refused choice changes nothing

    full = use_model("all-minilm-l6-v2", dimensions=384, layers=6)
    assert (full.dimensions, full.layers) == (0, 0)  # native sizes are stored as 0
    assert resolve_model_path(settings_module.load()) == manager.find_model_file("all-minilm-l6-v2").path


def test_use_refuses_what_cannot_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"stella_en_1\.5b_v5 instead"):
        use_model("stella_en_400M_v5")
    # Not built (a checkout's gguf/ may hold a real build: look only in this test's home).
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", tmp_path / "no-checkout-gguf")
    with pytest.raises(ModelError, match=r"models build nomic-embed-text-v1\.5"):
        use_model("nomic-embed-text-v1.5")
    with pytest.raises(ModelError, match="models download mxbai-embed-xsmall-v1"):
        use_model("mxbai-embed-xsmall-v1")
    with pytest.raises(ModelError, match="Unknown model"):
        use_model("no-such-model")


def test_slice_model_names_the_file_by_the_rule(default_model: Path) -> None:
    path = manager.slice_model("all-minilm-l6-v2", 2)
    in_use = manager.find_model_file("all-minilm-l6-v2").type  # BF16 or Q8_0, by the CPU
    assert path.name == f"all-minilm-l6-v2.{in_use}.L2.gguf" and path.parent in paths.model_search_dirs()
    assert manager.inspect_gguf(path).block_count == 2
    with pytest.raises(ModelError, match="1 to 5"):
        manager.slice_model("all-minilm-l6-v2", 6)


def test_cli_models_list_json(default_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_name = {item["display_name"]: item for item in listed}
    assert set(ISSUE_MODELS) <= set(by_name)
    minilm = by_name["all-MiniLM-L6-v2"]
    assert minilm["current"]
    assert any(f["type"] == "Q8_0" and f["layers"] is None for f in minilm["installed"])
    assert not by_name["stella_en_400M_v5"]["usable"]
    for item in listed:
        assert set(REQUIRED_FIELDS) <= set(item)


def test_cli_models_list_and_info_text(default_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "* all-minilm-l6-v2" in out and "unsupported" in out
    assert main(["models", "info", "jina-embeddings-v3"]) == 0
    out = capsys.readouterr().out
    assert "cc-by-nc-4.0" in out and "retrieval.query" in out
    assert main(["models", "info", "nomic-embed-text-v1.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["query_prompt"] == "search_query: "


def test_choosing_a_model_writes_no_settings_its_caller_does(default_model: Path) -> None:
    before = settings_module.load()
    result = manager.choose_model("all-MiniLM-L6-v2", dimensions=128)
    assert settings_module.load() == before  # core checked the choice and saved nothing
    result.apply(before)
    assert (before.model, before.dimensions, before.layers) == ("all-minilm-l6-v2", 128, 0)


def test_cli_models_use_and_slice(default_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "use", "all-minilm-l6-v2", "--dimensions", "256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dimensions"] == 256
    assert settings_module.load().dimensions == 256  # the command line saves the choice
    assert main(["models", "use", "all-minilm-l6-v2", "--dimensions", "9999"]) == 1
    assert "384 dimensions" in capsys.readouterr().err
    assert settings_module.load().dimensions == 256  # a refused choice changes nothing
    assert main(["models", "slice", "all-minilm-l6-v2", "--layers", "3"]) == 0
    in_use = manager.find_model_file("all-minilm-l6-v2").type
    assert capsys.readouterr().out.strip().endswith(f"all-minilm-l6-v2.{in_use}.L3.gguf")
    assert main(["models", "import", "/nonexistent/file.gguf"]) == 1
    assert "No such file" in capsys.readouterr().err


def test_bf16_is_preferred_only_where_the_cpu_runs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = [manager.ModelFile(tmp_path / f"m.{t}.gguf", "m", t, None) for t in ("Q8_0", "BF16", "F16")]
    monkeypatch.setattr(manager, "native_bf16", lambda: True)
    assert manager._pick(files, None).type == "BF16"  # type: ignore[union-attr]
    monkeypatch.setattr(manager, "native_bf16", lambda: False)
    assert manager._pick(files, None).type == "Q8_0"  # type: ignore[union-attr]
    assert manager._pick(files, "F16").type == "F16"  # type: ignore[union-attr]
