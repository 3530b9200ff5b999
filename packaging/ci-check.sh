#!/usr/bin/env bash
# The fast part of the packaging checks, for CI (a minute, no bundle built): the spec parses
# and names files that exist, the icon renderings match their SVG, the desktop entry and the
# AppStream metainfo validate, and `localsearch self-test` passes from the dev venv. The full
# build and smoke test (bundle, .deb, Xvfb window, qemu CPUs) is `make package`.
#
#     packaging/ci-check.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
APP_ID=org.localsearch.localsearch
export QT_QPA_PLATFORM=offscreen

echo "== spec"
"$PYTHON" - <<'PY'
import ast, pathlib
spec = pathlib.Path("packaging/localsearch.spec").read_text()
ast.parse(spec)  # it is Python
for needed in ("packaging/localsearch_main.py", "assets/icons/localsearch.ico", "assets/icons/localsearch.icns",
               "localsearch/core/models/catalog.toml", "localsearch/gui/icons/localsearch-256.png"):
    assert pathlib.Path(needed).is_file(), f"the spec needs {needed}"
print("spec parses; the files it collects exist")
PY
for script in packaging/linux/build-deb.sh packaging/linux/smoke.sh packaging/build-llama-portable.sh; do
    bash -n "$script"
done

echo "== icons"
"$PYTHON" packaging/render_icons.py --check && echo "renderings match assets/icons/localsearch.svg"

echo "== desktop entry and metainfo"
desktop-file-validate "packaging/linux/$APP_ID.desktop" && echo "desktop entry valid"
appstreamcli validate --no-net "packaging/linux/$APP_ID.metainfo.xml"

echo "== self-test"
"$PYTHON" -m localsearch self-test
