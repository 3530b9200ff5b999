#!/usr/bin/env bash
# Smoke test of the built app (run by `make package`, after the bundle and the .deb):
#  1. the frozen command line in a fresh LOCALSEARCH_HOME: index, search --json, status --json
#  2. the frozen self-test (engine child) and `models build` naming the bundled model
#  3. the frozen window under Xvfb: it appears, its WM_CLASS matches the desktop entry's
#     StartupWMClass, a screenshot is saved; a second launch exits and opens no window
#  4. the desktop entry and the AppStream metainfo validate
#  5. the .deb installs with apt-get, runs from /usr/bin, and is removed cleanly
#  6. on emulated older CPUs (qemu-x86_64 -cpu Nehalem / Haswell; in process, as qemu-user
#     does not follow exec): the self-test passes and its probe embedding equals the native
#     one within cosine 0.999
# Needs root for step 5 (skipped otherwise, or with SMOKE_SKIP_DEB=1); SMOKE_SKIP_QEMU=1
# skips step 6. Screenshots and logs go to build/smoke/.
#
#     packaging/linux/smoke.sh [DIST_DIR] [DEB]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIST=$(realpath "${1:-dist/localsearch}")
DEB=${2:-$(ls dist/localsearch_*_"$(dpkg --print-architecture)".deb 2>/dev/null | tail -1 || true)}
APP="$DIST/localsearch"
APP_ID=org.localsearch.localsearch
OUT=$PWD/build/smoke
rm -rf "$OUT" && mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export LOCALSEARCH_HOME="$WORK/home"
unset PYTHONPATH
step() { printf '\n== %s\n' "$*"; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }

[ -x "$APP" ] || fail "no frozen app at $APP"

step "1. frozen index / search / status on a sample folder"
SAMPLE="$WORK/sample"
mkdir -p "$SAMPLE/notes"
cat > "$SAMPLE/notes/garden.md" <<'EOF'
# Garden plan
Tomatoes go along the south fence; water them early in the morning and mulch with straw.
EOF
cat > "$SAMPLE/notes/boiler.txt" <<'EOF'
The boiler service is due in March. The engineer said the pressure valve should be replaced.
EOF
cat > "$SAMPLE/notes/trip.txt" <<'EOF'
Train to Lyon on the 14th, hotel near the old town, museum of fine arts on Saturday.
EOF
pdf=../shared/evaldata/pdfs/pdfminer_naacl06-shinyama.pdf  # a real paper, with text
[ -f "$pdf" ] && cp "$pdf" "$SAMPLE/"
"$APP" index --json "$SAMPLE" > "$OUT/index.json"
python3 - "$OUT/index.json" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1]))
assert summary["files_indexed"] >= 3 and summary["files_failed"] == 0, summary
print(f"indexed {summary['files_indexed']} files, {summary['chunks_added']} chunks")
EOF
"$APP" search --json "when should the heating be maintained" > "$OUT/search.json"
python3 - "$OUT/search.json" <<'EOF'
import json, sys
hits = json.load(open(sys.argv[1]))
assert hits and hits[0]["name"] == "boiler.txt", [h["name"] for h in hits]
print(f"top hit {hits[0]['name']} score {hits[0]['score']:.3f}")
EOF
"$APP" status --json > "$OUT/status.json"
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('status:', {k: s[k] for k in list(s)[:4]})" "$OUT/status.json"

step "2. frozen self-test and models build"
"$APP" self-test --json > "$OUT/selftest-native.json" 2> "$OUT/selftest-native.log" \
    || { cat "$OUT/selftest-native.log"; fail "self-test"; }
grep -E "model:|CPU backend:" "$OUT/selftest-native.log"
"$APP" models build | tee "$OUT/models-build.txt" | grep -q "already inside this app" || fail "models build"

step "3. the frozen window under Xvfb"
WANT_CLASS=$(sed -n 's/^StartupWMClass=//p' "packaging/linux/$APP_ID.desktop")
export OUT APP WANT_CLASS
xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
    set -euo pipefail
    "$APP" > "$OUT/gui.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
        wid=$(xdotool search --class "$WANT_CLASS" 2>/dev/null | tail -1 || true)
        [ -n "$wid" ] && xwininfo -id "$wid" | grep -q IsViewable && break
        wid=""; sleep 0.25
    done
    [ -n "$wid" ] || { cat "$OUT/gui.log"; echo "no window appeared" >&2; exit 1; }
    xprop -id "$wid" WM_CLASS | tee "$OUT/wm_class.txt"
    grep -q "\"$WANT_CLASS\"" "$OUT/wm_class.txt" || { echo "WM_CLASS does not match $WANT_CLASS" >&2; exit 1; }
    sleep 2  # let the first status paint
    import -window root "$OUT/window.png"
    # A second launch asks the first to come forward and exits: one window, one writer.
    timeout 60 "$APP" > "$OUT/second.log" 2>&1 || { echo "second launch failed" >&2; exit 1; }
    windows=$(xdotool search --onlyvisible --class "$WANT_CLASS" | wc -l)
    kill "$pid"; wait "$pid" || true
    [ "$windows" -eq 1 ] || { echo "$windows windows after a second launch" >&2; exit 1; }
'
echo "screenshot: $OUT/window.png"

step "4. desktop entry and metainfo"
desktop-file-validate "packaging/linux/$APP_ID.desktop"
appstreamcli validate --no-net "packaging/linux/$APP_ID.metainfo.xml"

step "5. the .deb"
if [ "${SMOKE_SKIP_DEB:-0}" = 1 ] || [ "$(id -u)" -ne 0 ] || [ -z "$DEB" ]; then
    echo "skipped (SMOKE_SKIP_DEB, not root, or no .deb)"
else
    dpkg -I "$DEB" | sed -n '/Depends/p'
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$DEB")" > "$OUT/apt-install.log"
    [ "$(readlink -f /usr/bin/localsearch)" = /opt/localsearch/localsearch ] || fail "/usr/bin/localsearch"
    desktop-file-validate "/usr/share/applications/$APP_ID.desktop"
    appstreamcli validate --no-net "/usr/share/metainfo/$APP_ID.metainfo.xml" >/dev/null
    [ -f "/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg" ] || fail "icon not installed"
    LOCALSEARCH_HOME="$WORK/deb-home" localsearch self-test > "$OUT/selftest-deb.txt" \
        || { cat "$OUT/selftest-deb.txt"; fail "installed self-test"; }
    tail -1 "$OUT/selftest-deb.txt"
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq localsearch > "$OUT/apt-remove.log"
    [ ! -e /opt/localsearch ] && [ ! -e /usr/bin/localsearch ] || fail "files left after removal"
    ! dpkg -l localsearch 2>/dev/null | grep -q '^ii' || fail "still installed"
    echo "installed, ran from /usr/bin/localsearch, removed cleanly"
fi

step "6. older CPUs under qemu-user"
if [ "${SMOKE_SKIP_QEMU:-0}" = 1 ] || ! command -v qemu-x86_64 >/dev/null; then
    echo "skipped (SMOKE_SKIP_QEMU or no qemu-x86_64)"
else
    # PyInstaller's bootloader re-executes itself once (to set LD_LIBRARY_PATH); qemu-user
    # would let that second process run natively. Handing it the variables the bootloader
    # gives its second process keeps everything in the one emulated process.
    one_process=(env "_PYI_APPLICATION_HOME_DIR=$DIST/_internal" "_PYI_ARCHIVE_FILE=$APP"
                 "_PYI_PARENT_PROCESS_LEVEL=1" "LD_LIBRARY_PATH=$DIST/_internal")
    "${one_process[@]}" "$APP" self-test --in-process --json > "$OUT/selftest-inprocess.json" 2>/dev/null
    for cpu in Nehalem Haswell; do
        "${one_process[@]}" qemu-x86_64 -cpu "$cpu" "$APP" self-test --in-process --json \
            > "$OUT/selftest-$cpu.json" 2> "$OUT/selftest-$cpu.log" \
            || { tail -20 "$OUT/selftest-$cpu.log"; fail "self-test under qemu -cpu $cpu"; }
    done
    python3 - "$OUT" <<'EOF'
import json, math, sys
out = sys.argv[1]
native = json.load(open(f"{out}/selftest-inprocess.json"))
for cpu in ("Nehalem", "Haswell"):
    run = json.load(open(f"{out}/selftest-{cpu}.json"))
    a, b = native["probe"], run["probe"]
    cosine = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    print(f"{cpu:8} variant {run['cpu_variant']:12} ok={run['ok']} cosine to native {cosine:.6f}")
    assert run["ok"] and cosine >= 0.999, (cpu, run["reason"], cosine)
    assert run["cpu_variant"] != native["cpu_variant"], "the emulated CPU ran the native variant"
print(f"native   variant {native['cpu_variant']}")
EOF
fi
printf '\nsmoke test passed\n'
