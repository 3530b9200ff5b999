"""Shrink holiday pictures before sending them: longest side 1600 px, JPEG quality 85."""

import sys
from pathlib import Path

from PIL import Image

LONGEST = 1600


def shrink(source: Path, target: Path) -> None:
    with Image.open(source) as img:
        img.thumbnail((LONGEST, LONGEST))
        img.save(target, "JPEG", quality=85, optimize=True)


if __name__ == "__main__":
    out = Path(sys.argv[2])
    out.mkdir(exist_ok=True)
    for path in Path(sys.argv[1]).glob("*.jpg"):
        shrink(path, out / path.name)
