#!/usr/bin/env bash
# Build the .deb from the PyInstaller folder (dist/localsearch):
#   /opt/localsearch/            the bundle, as built
#   /usr/bin/localsearch         a link to it (the command line, and the desktop entry's Exec)
#   /usr/share/applications/     the desktop entry       }
#   /usr/share/metainfo/         the AppStream metainfo  } all named by the one app id
#   /usr/share/icons/hicolor/    the icon, SVG and PNGs  }
# Depends: is worked out from the bundle itself: every shared library some file in it needs
# and it does not carry is looked up with dpkg -S, and libc6's version is the highest GLIBC_
# symbol version any file in it asks for. Fails if a needed library is not installed here.
#
#     packaging/linux/build-deb.sh [DIST_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DIST=${1:-dist/localsearch}
OUT=${2:-dist}
APP_ID=org.localsearch.localsearch
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
ARCH=$(dpkg --print-architecture)
STAGE=build/deb/localsearch_${VERSION}_${ARCH}

[ -x "$DIST/localsearch" ] || { echo "build-deb: no bundle at $DIST (run pyinstaller first)" >&2; exit 1; }

rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/metainfo" "$STAGE/usr/share/doc/localsearch"
cp -a "$DIST" "$STAGE/opt/localsearch"
ln -s /opt/localsearch/localsearch "$STAGE/usr/bin/localsearch"
install -m 644 "packaging/linux/$APP_ID.desktop" "$STAGE/usr/share/applications/"
install -m 644 "packaging/linux/$APP_ID.metainfo.xml" "$STAGE/usr/share/metainfo/"
install -D -m 644 assets/icons/localsearch.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg"
for png in localsearch/gui/icons/localsearch-*.png; do
    size=$(basename "$png" .png); size=${size#localsearch-}
    install -D -m 644 "$png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: localsearch"
    echo
    echo "Files: *"
    echo "License: MIT"
    echo
    echo "Files: opt/localsearch/_internal/gguf/*"
    echo "Comment: all-MiniLM-L6-v2 (sentence-transformers), converted to GGUF"
    echo "License: Apache-2.0"
    echo
    echo "Files: opt/localsearch/_internal/PySide6/*"
    echo "License: LGPL-3.0"
    echo
    echo "Files: opt/localsearch/_internal/llama_cpp/*"
    echo "License: MIT"
} > "$STAGE/usr/share/doc/localsearch/copyright"

# --- what the bundle needs from the system ---------------------------------------------------
elves=$(find "$STAGE/opt/localsearch" -type f \( -name '*.so*' -o -perm -u+x \) -exec sh -c \
    'for f; do head -c4 "$f" 2>/dev/null | grep -q "ELF" && echo "$f"; done' sh {} +)
carried=$(find "$STAGE/opt/localsearch" \( -type f -o -type l \) -name '*.so*' -printf '%f\n' | sort -u)
needed=$(for f in $elves; do objdump -p "$f" | awk '/NEEDED/ {print $2}'; done | sort -u)
system_libs=$(comm -23 <(echo "$needed") <(echo "$carried"))
glibc=$(for f in $elves; do objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' ; done \
    | sed 's/GLIBC_//' | sort -uV | tail -1)
packages=""
missing=""
for lib in $system_libs; do
    # awk reads all of ldconfig's output: leaving at the first match would kill ldconfig with
    # SIGPIPE, which pipefail makes this script's exit status (141) once the list is long.
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64/ && !found {print $NF; found = 1}')
    [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found {print $NF; found = 1}')
    if [ -z "$path" ]; then missing="$missing $lib"; continue; fi
    pkg=""
    real=$(readlink -f "$path")
    # dpkg knows a file by the path its package shipped it at: /lib or /usr/lib (usrmerge).
    for candidate in "$real" "$path" "${real#/usr}" "/usr$real" "${path#/usr}" "/usr$path"; do
        pkg=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1 || true)
        [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || { missing="$missing $lib"; continue; }
    packages="$packages $pkg"
done
if [ -n "$missing" ]; then
    echo "build-deb: the bundle needs libraries this machine lacks:$missing" >&2
    exit 1
fi
# libc6 carries the GLIBC version floor; the rest need only be present.
depends="libc6 (>= $glibc)"
for pkg in $(echo "$packages" | tr ' ' '\n' | sort -u | grep -v '^libc6$'); do
    depends="$depends, $pkg"
done
echo "$glibc" > build/deb/glibc-required.txt
echo "$depends" > build/deb/depends.txt

installed_kb=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: localsearch
Version: $VERSION
Section: utils
Priority: optional
Architecture: $ARCH
Maintainer: localsearch developers <localsearch@localhost>
Installed-Size: $installed_kb
Depends: $depends
Description: search your own files by meaning, offline
 localsearch indexes the documents, notes and PDFs in the folders you pick and
 finds them by what they mean as well as by their words. Everything runs on
 this computer: the embedding model ships inside the package and no network is
 needed, not even on the first launch.
EOF
# Icons and desktop entries are picked up by dpkg triggers of hicolor-icon-theme and
# desktop-file-utils, so no maintainer scripts are needed.
mkdir -p "$OUT"
deb="$OUT/localsearch_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >/dev/null
echo "built $deb ($(du -h "$deb" | cut -f1)), needs glibc >= $glibc"
echo "Depends: $depends"
