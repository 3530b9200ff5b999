"""Files from the Hugging Face hub: the only module that imports huggingface_hub.

One file at a time into `<target>.partial`, resumed with an HTTP range request when a
partial file is already there (an earlier run cut off, the laptop closed), then checked:
the size the hub announced and a sha256 (the catalog's when it has one, else the hash the
hub reports for LFS files). Only a complete, verified file is renamed to its target; a file
whose hash is wrong is deleted. HF_ENDPOINT points the hub elsewhere (tests use a local
server); HF_HUB_OFFLINE or no route gives a clear "offline" error.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localsearch.core.models.files import file_sha256
from localsearch.errors import ModelError

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class DownloadProgress:
    filename: str
    done: int
    total: int | None
    resumed_from: int = 0

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def __str__(self) -> str:
        mb = self.done / 1e6
        if self.total:
            percent = 100 * self.done / self.total
            return f"{self.filename}: {mb:,.1f} / {self.total / 1e6:,.1f} MB ({percent:.0f}%)"
        return f"{self.filename}: {mb:,.1f} MB"


ProgressCallback = Callable[[DownloadProgress], None]


def endpoint() -> str:
    """The hub's address, read now (huggingface_hub reads HF_ENDPOINT once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


# Plain HTTP is allowed to this machine only: a local stand-in server in tests, a mirror
# on localhost. Anything else goes over TLS, so no one on the way can swap the file.
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_url(url: str, what: str) -> None:
    """Refuse to fetch `url` unless it is https, or http to this machine (ModelError)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise ModelError(
        f"Refusing to download {what} from {url}: models are fetched over HTTPS only "
        "(plain HTTP only from this machine, 127.0.0.1)"
    )


def _offline_error(repo: str, filename: str, exc: BaseException | None = None) -> ModelError:
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return ModelError(
        f"Cannot reach {endpoint()} to download {filename} from {repo}: you seem to be offline{detail}. "
        "Connect and try again (a partial download resumes), or copy the file here and "
        "use `localsearch models import FILE.gguf`."
    )


def _progress_class(filename: str, report: ProgressCallback, resumed_from: int) -> Any:
    """A tqdm stand-in that forwards huggingface_hub's progress to `report`, at most 5 times a second."""
    from tqdm.auto import tqdm

    class Progress(tqdm):  # type: ignore[misc, unused-ignore]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no terminal bar: the caller shows progress its own way
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            self._total = kwargs.get("total")
            self._last = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            now = time.monotonic()
            if now - self._last >= 0.2 or (self._total and self._done >= self._total):
                self._last = now
                report(DownloadProgress(filename, self._done, self._total, resumed_from))
            return None

    return Progress


_lock = threading.Lock()


def fetch(
    repo: str,
    filename: str,
    target: Path,
    *,
    revision: str = "main",
    sha256: str = "",
    report: ProgressCallback = lambda progress: None,
) -> Path:
    """Download `filename` of the model repository `repo` at `revision` to `target`.

    Resumes from `target.partial` when present. Verifies size and sha256 before the file
    takes its name; raises ModelError (offline, not found, wrong hash) otherwise."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or constants.HF_HUB_OFFLINE:
        raise _offline_error(repo, filename)

    base = endpoint()
    check_url(base, filename)
    url = hf_hub_url(repo, filename, revision=revision or "main", endpoint=base)
    headers = build_hf_headers()
    try:
        meta = get_hf_file_metadata(url, endpoint=base)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ModelError(f"{repo} has no file {filename} at revision {revision}: {exc}") from exc
    except OfflineModeIsEnabled as exc:
        raise _offline_error(repo, filename, exc) from exc
    except HfHubHTTPError as exc:
        raise ModelError(f"The hub refused {filename} of {repo}: {exc}") from exc
    except Exception as exc:  # connection refused, DNS, timeouts: httpx's errors, not ours to import
        raise _offline_error(repo, filename, exc) from exc

    if meta.location:
        check_url(meta.location, filename)  # a redirect must not step down to plain HTTP
    expected_size = meta.size
    hub_sha = (meta.etag or "").lower()
    expected_sha = sha256 or (hub_sha if _SHA256.match(hub_sha) else "")

    with _lock:  # one writer per partial file within this process
        resume = partial.stat().st_size if partial.is_file() else 0
        if expected_size is not None and resume > expected_size:
            partial.unlink()  # longer than the file: not a prefix of it
            resume = 0
        if resume:
            log.info("Resuming %s at byte %d", filename, resume)
        try:
            with open(partial, "ab") as handle:
                if expected_size is None or resume < expected_size:
                    http_get(
                        meta.location or url,
                        handle,
                        resume_size=resume,
                        headers=headers,
                        expected_size=expected_size,
                        displayed_filename=filename,
                        tqdm_class=_progress_class(filename, report, resume),
                    )
        except HfHubHTTPError as exc:
            raise ModelError(
                f"Downloading {filename} from {repo} failed: {exc}. Run the download again to resume."
            ) from exc
        except OSError as exc:
            if exc.errno is not None:  # the disk, not the network
                raise ModelError(f"Cannot write {partial}: {exc}") from exc
            raise ModelError(
                f"Downloading {filename} from {repo} stopped short ({exc}). Run the download again to resume."
            ) from exc
        except Exception as exc:  # the connection dropped for good: keep the partial file to resume
            raise ModelError(
                f"Downloading {filename} from {repo} was interrupted ({type(exc).__name__}: {exc}). "
                "Run the download again to resume where it stopped."
            ) from exc

        size = partial.stat().st_size
        if expected_size is not None and size != expected_size:
            partial.unlink(missing_ok=True)
            raise ModelError(
                f"{filename} from {repo} has {size:,} bytes, not the {expected_size:,} announced; deleted it"
            )
        if expected_sha:
            actual = file_sha256(partial)
            if actual != expected_sha:
                partial.unlink(missing_ok=True)
                raise ModelError(
                    f"{filename} from {repo} has sha256 {actual}, not the expected {expected_sha}; "
                    "deleted it (a damaged or substituted file)"
                )
        else:
            log.warning("No sha256 known for %s of %s: only its size was checked", filename, repo)
        report(DownloadProgress(filename, size, expected_size, resume))
        os.replace(partial, target)
    return target
