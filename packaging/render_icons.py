"""Render the app icon from its SVG source (assets/icons/localsearch.svg).

Writes the PNG sizes the window and the Linux hicolor theme use
(localsearch/gui/icons/localsearch-<N>.png, shipped inside the package), the Windows
.ico and the macOS .icns (assets/icons/). Qt draws the PNGs; the .ico and .icns are
containers of PNGs, written here directly so no image library is needed.

    python packaging/render_icons.py [--check]

--check renders to memory and fails when a committed rendering is missing or differs from
the SVG beyond antialiasing noise (another Qt version may round edges differently); the
.ico and .icns must hold every size.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "assets" / "icons" / "localsearch.svg"
PNG_DIR = REPO / "localsearch" / "gui" / "icons"
ICO = REPO / "assets" / "icons" / "localsearch.ico"
ICNS = REPO / "assets" / "icons" / "localsearch.icns"
# hicolor's usual sizes; 512 also serves macOS and the AppStream screenshot-less listing.
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS chunk types holding PNG data, by pixel size (Apple's "Icon Composer" types).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09", 1024: b"ic10"}


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"Qt could not encode a {size}px PNG")
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file whose images are PNGs (Windows Vista and later read them)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, blobs = b"", b""
    for size, png in sorted(pngs.items()):
        side = 0 if size >= 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset + len(blobs))
        blobs += png
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    chunks = b"".join(
        ICNS_TYPES[size] + struct.pack(">I", 8 + len(png)) + png for size, png in sorted(pngs.items())
    )
    return b"icns" + struct.pack(">I", 8 + len(chunks)) + chunks


def renderings() -> dict[Path, bytes]:
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"{SOURCE} is not a valid SVG")
    sizes = sorted({*PNG_SIZES, *ICO_SIZES, *ICNS_TYPES})
    pngs = {size: render_png(renderer, size) for size in sizes}
    out = {PNG_DIR / f"localsearch-{size}.png": pngs[size] for size in PNG_SIZES}
    out[ICO] = ico_bytes({s: pngs[s] for s in ICO_SIZES})
    out[ICNS] = icns_bytes({s: pngs[s] for s in ICNS_TYPES})
    return out


def _pixels(data: bytes) -> QImage:
    return QImage.fromData(data).convertToFormat(QImage.Format.Format_ARGB32)


def matches(committed: bytes, fresh: bytes, path: Path) -> bool:
    """PNGs: same size, and under 1 % of pixels off by more than 16 in any channel."""
    if path.suffix == ".ico":
        return struct.unpack("<HHH", committed[:6])[2] == len(ICO_SIZES)
    if path.suffix == ".icns":
        return committed[:4] == b"icns" and all(kind in committed for kind in ICNS_TYPES.values())
    a, b = _pixels(committed), _pixels(fresh)
    if a.size() != b.size() or a.isNull():
        return False
    raw_a, raw_b = bytes(a.constBits()), bytes(b.constBits())  # type: ignore[call-overload]
    off = sum(
        1 for i in range(0, len(raw_a), 4) if max(abs(raw_a[i + k] - raw_b[i + k]) for k in range(4)) > 16
    )
    return off <= 0.01 * a.width() * a.height()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed rendering is stale")
    args = parser.parse_args()
    QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    stale = []
    for path, data in renderings().items():
        if args.check:
            if not path.is_file() or not matches(path.read_bytes(), data, path):
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(REPO)} ({len(data):,} bytes)")
    if stale:
        print("stale renderings (run packaging/render_icons.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
