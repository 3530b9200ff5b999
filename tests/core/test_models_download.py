"""Downloads against a local HTTP server standing in for the Hugging Face hub (HF_ENDPOINT).

No test here touches the network: the hub is a thread on 127.0.0.1 that answers the
requests huggingface_hub makes (HEAD for metadata, GET with Range for data) and can cut a
connection mid-file or fail, to show resume and verification.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from huggingface_hub import constants as hf_constants

from localsearch import paths
from localsearch.core.embedding import LlamaEmbedder
from localsearch.core.models import manager
from localsearch.core.models.catalog import REQUIRED_FIELDS, Catalog
from localsearch.core.models.convert import convert_hf
from localsearch.core.models.gguf_io import inspect_gguf
from localsearch.errors import ModelError
from tests.core.tiny_models import CLS, SEP, TinyConfig, forward, random_weights, write_hf_folder

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 8192


@dataclass
class FakeHub:
    """Files by (repo, path); knobs to misbehave; a log of what was asked."""

    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    lfs: bool = True  # report the sha256 as the LFS etag, as the hub does for large files
    cut_after: int | None = None  # bytes sent before the connection drops (first GET only)
    fail_gets: int = 0  # GETs answered 503 after the cut
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range
    served: int = 0
    url: str = ""


def _handler(hub: FakeHub) -> type[http.server.BaseHTTPRequestHandler]:
    route = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _lookup(self) -> bytes | None:
            m = route.match(self.path.split("?")[0])
            if m is None:
                return None
            return hub.files.get((m["repo"], m["path"]))

        def _meta_headers(self, data: bytes) -> None:
            digest = hashlib.sha256(data).hexdigest()
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{digest if hub.lfs else "abc123"}"')
            if hub.lfs:
                self.send_header("X-Linked-Etag", f'"{digest}"')
            self.send_header("Accept-Ranges", "bytes")

        def _not_found(self) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Error-Message", "Entry not found")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            hub.requests.append(("HEAD", self.path, ""))
            data = self._lookup()
            if data is None:
                return self._not_found()
            self.send_response(200)
            self._meta_headers(data)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def do_GET(self) -> None:
            ranged = self.headers.get("Range", "")
            hub.requests.append(("GET", self.path, ranged))
            data = self._lookup()
            if data is None:
                return self._not_found()
            gets = sum(1 for r in hub.requests if r[0] == "GET")
            if hub.cut_after is not None and 1 < gets <= 1 + hub.fail_gets:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            if m := re.match(r"bytes=(\d+)-", ranged):
                start = int(m.group(1))
            body = data[start:]
            self.send_response(206 if start else 200)
            self._meta_headers(data)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if hub.cut_after is not None and gets == 1:
                self.wfile.write(body[: hub.cut_after])
                hub.served += hub.cut_after
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the line drops mid-file
                self.close_connection = True
                return
            self.wfile.write(body)
            hub.served += len(body)

    return Handler


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    state = FakeHub()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", state.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub hands data over in 10 MB pieces; a test file is smaller than one piece,
    # so make them small enough that bytes received before a cut reach the disk.
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", CHUNK)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


TINY = TinyConfig(layers=2)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    weights = random_weights(TINY, seed=11)
    return write_hf_folder(tmp_path_factory.mktemp("hf") / "tiny", TINY, weights), weights


@pytest.fixture(scope="module")
def tiny_gguf(tiny_folder: tuple[Path, dict[str, np.ndarray]]) -> bytes:
    folder, _ = tiny_folder
    return convert_hf(folder, folder.parent / "tiny.F16.gguf").read_bytes()


def _entry(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "display_name": "Tiny",
        "hf_repo": "test/tiny",
        "hf_revision": "main",
        "hf_file": "tiny.F16.gguf",
        "format": "gguf",
        "hf_extra_files": [],
        "sha256": "",
        "license": "apache-2.0",
        "parameters": 1,
        "file_size": 0,
        "dimensions": TINY.hidden,
        "matryoshka_dimensions": "none",
        "output_heads": [],
        "layers": TINY.layers,
        "layer_truncation": False,
        "max_context": TINY.max_positions,
        "pooling": "mean",
        "query_prompt": "",
        "document_prompt": "",
        "tasks": [],
        "task_prompts": {},
        "task_adapters": False,
        "hf_architecture": "BertModel",
        "architecture": "bert",
        "llama_cpp": True,
        "converter": "",
        "reason": "",
        "alternative": "",
    }
    entry.update(overrides)
    assert set(entry) == set(REQUIRED_FIELDS)
    return entry


def _catalog(**overrides: object) -> Catalog:
    return Catalog.parse(tomli_w.dumps({"schema": 1, "models": {"tiny": _entry(**overrides)}}))


def _leftovers() -> list[Path]:
    return sorted(p for p in paths.models_dir().rglob("*") if p.is_file())


def test_download_verifies_and_installs(hub: FakeHub, tiny_gguf: bytes) -> None:
    hub.files[("test/tiny", "tiny.F16.gguf")] = tiny_gguf
    seen: list[object] = []
    catalog = _catalog(sha256=hashlib.sha256(tiny_gguf).hexdigest())
    path = manager.download_model("tiny", catalog=catalog, progress=seen.append)
    assert path == paths.models_dir() / "tiny.F16.gguf"
    assert path.read_bytes() == tiny_gguf
    assert _leftovers() == [path]
    assert seen and getattr(seen[-1], "done", None) == len(tiny_gguf)
    assert manager.resolve_model_file("tiny", catalog=catalog) == path


def test_an_interrupted_download_resumes_where_it_stopped(hub: FakeHub, tiny_gguf: bytes) -> None:
    hub.files[("test/tiny", "tiny.F16.gguf")] = tiny_gguf
    cut = 4 * CHUNK
    assert len(tiny_gguf) > 2 * cut
    hub.cut_after, hub.fail_gets = cut, 1  # the line drops, and the retry fails too
    catalog = _catalog()
    with pytest.raises(ModelError, match="resume"):
        manager.download_model("tiny", catalog=catalog)
    partial = [p for p in _leftovers() if p.name.endswith(".partial")]
    assert len(partial) == 1 and partial[0].stat().st_size == cut
    assert not list(paths.models_dir().glob("*.gguf"))  # nothing under the model's name yet

    # The next run asks only for the rest.
    path = manager.download_model("tiny", catalog=catalog)
    assert path.read_bytes() == tiny_gguf
    last_get = [r for r in hub.requests if r[0] == "GET"][-1]
    assert last_get[2] == f"bytes={cut}-"
    assert hub.served == len(tiny_gguf)  # not one byte sent twice
    assert _leftovers() == [path]


def test_a_dropped_connection_is_resumed_within_one_download(hub: FakeHub, tiny_gguf: bytes) -> None:
    hub.files[("test/tiny", "tiny.F16.gguf")] = tiny_gguf
    hub.cut_after = 3 * CHUNK
    path = manager.download_model("tiny", catalog=_catalog())
    assert path.read_bytes() == tiny_gguf
    assert [r[2] for r in hub.requests if r[0] == "GET"] == ["", f"bytes={3 * CHUNK}-"]


def test_a_file_with_the_wrong_checksum_is_rejected_and_removed(hub: FakeHub, tiny_gguf: bytes) -> None:
    hub.files[("test/tiny", "tiny.F16.gguf")] = tiny_gguf
    with pytest.raises(ModelError, match="sha256"):
        manager.download_model("tiny", catalog=_catalog(sha256="0" * 64))
    assert _leftovers() == []


def test_the_hubs_own_hash_is_checked_when_the_catalog_has_none(hub: FakeHub, tiny_gguf: bytes) -> None:
    # The server announces the sha256 of the real file but serves a tampered copy of the same size.
    tampered = bytearray(tiny_gguf)
    tampered[-1] ^= 0xFF
    hub.files[("test/tiny", "tiny.F16.gguf")] = tiny_gguf
    original_lookup = hub.files.copy()

    class Swap(dict):  # HEAD sees the original, GET the tampered bytes
        def get(self, key: object, default: object = None) -> object:
            method = hub.requests[-1][0] if hub.requests else "HEAD"
            return bytes(tampered) if method == "GET" else original_lookup.get(key, default)  # type: ignore[arg-type]

    hub.files = Swap(original_lookup)
    with pytest.raises(ModelError, match="sha256"):
        manager.download_model("tiny", catalog=_catalog())
    assert _leftovers() == []


def test_a_downloaded_file_that_is_not_gguf_is_not_installed(hub: FakeHub) -> None:
    hub.files[("test/tiny", "tiny.F16.gguf")] = b"<html>rate limited</html>" * 50
    with pytest.raises(ModelError, match="not a GGUF"):
        manager.download_model("tiny", catalog=_catalog())
    assert _leftovers() == []


def test_offline_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelError, match="offline"):
        manager.download_model("tiny", catalog=_catalog())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        manager.download_model("tiny", catalog=_catalog())
    assert _leftovers() == []


def test_a_missing_file_on_the_hub_names_it(hub: FakeHub) -> None:
    with pytest.raises(ModelError, match=r"has no file tiny\.F16\.gguf"):
        manager.download_model("tiny", catalog=_catalog())


def test_a_safetensors_model_is_downloaded_and_converted(
    hub: FakeHub, tiny_folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    folder, weights = tiny_folder
    for path in folder.rglob("*"):
        if path.is_file():
            hub.files[("test/tiny", path.relative_to(folder).as_posix())] = path.read_bytes()
    catalog = _catalog(
        format="safetensors",
        hf_file="model.safetensors",
        converter="bert",
        sha256=hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest(),
        # tokenizer.json is not on this hub: an optional file may be missing
        hf_extra_files=[
            "config.json",
            "vocab.txt",
            "tokenizer.json",
            "tokenizer_config.json",
            "1_Pooling/config.json",
        ],
    )
    path = manager.download_model("tiny", catalog=catalog)
    assert path == paths.models_dir() / "tiny.F16.gguf"
    assert inspect_gguf(path).block_count == TINY.layers
    assert _leftovers() == [path]
    embedder = LlamaEmbedder(path, threads=1)
    try:
        got = embedder.embed_tokens([[7, 8, 9]])[0]
    finally:
        embedder.close()
    assert float(got @ forward(weights, TINY, [CLS, 7, 8, 9, SEP])) > 0.9999


def test_models_that_cannot_be_downloaded_say_why() -> None:
    catalog = _catalog(llama_cpp=False, reason="Not supported by llama.cpp.", architecture="new")
    with pytest.raises(ModelError, match="Not supported"):
        manager.download_model("tiny", catalog=catalog)
    with pytest.raises(ModelError, match="No download source"):
        manager.download_model("tiny", catalog=_catalog(hf_file=""))
