"""Figures of the built Linux app: size, start-up time and memory.

- size: the PyInstaller folder on disk and the compressed .deb; with --untrimmed DIR (a
  build made with LOCALSEARCH_TRIM=0) and its .deb, what trimming saved (unused Qt
  plugins and translations, the Qt libraries only they needed, stripped symbols).
- cold start to the first window: the frozen app launched under Xvfb in a fresh
  LOCALSEARCH_HOME, timed until its window is mapped (xdotool); the first launch after
  dropping the page cache (when this process may: root), then warm launches.
- to a first search result: the frozen `search --json` in a fresh process against a
  prepared index of a few notes (model load, query embedding, search), cold then warm.
- memory at idle: the window's process and its children 10 s after the window appeared
  and the first status painted: RSS and PSS (/proc/PID/smaps_rollup).

Runs alternate with the same measurements of the source checkout's app (`--dev`), as a
peer on this shared machine; each reports median and range.

    python bench/package_figures.py [--app dist/localsearch/localsearch] [--deb dist/localsearch_*.deb]
        [--untrimmed build/untrimmed/localsearch --untrimmed-deb build/untrimmed/x.deb] [--rounds 5]

Writes bench/results/package_figures.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import common
from common import PROJECT_DIR

RESULTS = common.RESULTS_DIR / "package_figures.json"
NOTES = {
    "garden.md": "Tomatoes go along the south fence; water them early and mulch with straw.",
    "boiler.txt": "The boiler service is due in March; the pressure valve should be replaced.",
    "trip.txt": "Train to Lyon on the 14th, hotel near the old town, museum on Saturday.",
}


def disk_usage(path: Path) -> dict:
    files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return {
        "bytes": sum(p.stat().st_size for p in files),
        "allocated_bytes": int(subprocess.check_output(["du", "-sk", str(path)]).split()[0]) * 1024,
        "files": len(files),
    }


def trimming(analysis_toc: Path, bundle: Path) -> dict:
    """What trimming saved, from PyInstaller's own record of what its analysis collected
    (Analysis-00.toc: destination, source, kind), before the spec dropped and stripped:
    each collected file at its source size, against the bundle as built."""
    import ast

    toc = ast.literal_eval(analysis_toc.read_text())
    entries = {}
    for part in toc:
        if isinstance(part, list) and part and isinstance(part[0], tuple) and len(part[0]) == 3:
            for dest, src, kind in part:
                if kind in ("BINARY", "DATA", "EXTENSION") and src and Path(src).is_file():
                    entries.setdefault(dest, Path(src).stat().st_size)
    internal = bundle / "_internal"
    built = {
        str(p.relative_to(internal)): p.stat().st_size
        for p in internal.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    dropped = {d: n for d, n in entries.items() if d not in built}
    stripped = sum(n - built[d] for d, n in entries.items() if d in built and n > built[d])
    return {
        "collected_before_trimming_bytes": sum(entries.values()),
        "dropped_files": len(dropped),
        "dropped_bytes": sum(dropped.values()),
        "stripping_saved_bytes": stripped,
        "saved_bytes": sum(dropped.values()) + stripped,
    }


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QT_QPA_PLATFORM")}
    env["LOCALSEARCH_HOME"] = str(home)
    return env


def time_to_window(command: list[str], home: Path, display: str, idle_seconds: float = 0.0) -> dict:
    env = _env(home)
    env["DISPLAY"] = display
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    window = None
    while time.monotonic() - started < 120:
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--pid", str(process.pid)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        ).stdout.split()
        if found:
            window = found[-1]
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    result: dict = {"seconds": seconds if window else None}
    if window and idle_seconds:
        time.sleep(idle_seconds)
        result.update(memory(process.pid))
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return result


def memory(pid: int) -> dict:
    import psutil

    parent = psutil.Process(pid)
    procs = [parent, *parent.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        try:
            rss += proc.memory_info().rss
            rollup = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
            pss += next(
                int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")
            )
        except (psutil.Error, OSError, StopIteration):
            continue
    return {"idle_rss_bytes": rss, "idle_pss_bytes": pss, "idle_processes": len(procs)}


def time_to_result(command: list[str], home: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [*command, "search", "--json", "when is the heating serviced"],
        capture_output=True,
        text=True,
        env=_env(home),
        check=False,
    )
    seconds = time.monotonic() - started
    hits = json.loads(done.stdout) if done.returncode == 0 else []
    if not hits or hits[0]["name"] != "boiler.txt":
        raise SystemExit(f"{command}: unexpected search result {done.stdout[:300]} {done.stderr[-500:]}")
    return seconds


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default=str(PROJECT_DIR / "dist" / "localsearch" / "localsearch"))
    parser.add_argument("--deb", default=None, help="the .deb (default: the newest in dist/)")
    parser.add_argument(
        "--dev",
        default=str(PROJECT_DIR / ".venv" / "bin" / "localsearch"),
        help="the source checkout's app, measured alongside as a peer",
    )
    parser.add_argument(
        "--analysis-toc",
        default=str(PROJECT_DIR / "build" / "pyinstaller" / "localsearch" / "Analysis-00.toc"),
        help="PyInstaller's record of what it collected before the spec trimmed",
    )
    parser.add_argument("--untrimmed", help="a bundle built with LOCALSEARCH_TRIM=0")
    parser.add_argument("--untrimmed-deb", help="its .deb")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    app = Path(args.app)
    deb = Path(args.deb or sorted(glob.glob(str(PROJECT_DIR / "dist" / "localsearch_*.deb")))[-1])
    builds = {"bundle": [str(app)], "dev": [args.dev]}

    result: dict = {
        "date": common.now(),
        "machine": common.machine(),
        "rounds": args.rounds,
    }
    size = {"bundle": disk_usage(app.parent), "deb_bytes": deb.stat().st_size, "deb": deb.name}
    if Path(args.analysis_toc).is_file():
        size["trimming"] = trimming(Path(args.analysis_toc), app.parent)
    if args.untrimmed:
        size["untrimmed_bundle"] = disk_usage(Path(args.untrimmed))
        size["trimming_saved_bytes"] = size["untrimmed_bundle"]["bytes"] - size["bundle"]["bytes"]
    if args.untrimmed_deb:
        size["untrimmed_deb_bytes"] = Path(args.untrimmed_deb).stat().st_size
        size["trimming_saved_deb_bytes"] = size["untrimmed_deb_bytes"] - size["deb_bytes"]
    result["size"] = size

    work = Path(tempfile.mkdtemp(prefix="package-figures-"))
    xvfb = subprocess.Popen(
        ["Xvfb", ":97", "-screen", "0", "1280x800x24", "-nolisten", "tcp"], stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)
    try:
        # A prepared index per build for the search timing (indexed once, untimed).
        notes = work / "notes"
        notes.mkdir()
        for name, text in NOTES.items():
            (notes / name).write_text(text)
        for name, command in builds.items():
            subprocess.run(
                [*command, "index", str(notes)],
                env=_env(work / f"search-{name}"),
                check=True,
                capture_output=True,
            )
        window: dict = {name: [] for name in builds}
        search: dict = {name: [] for name in builds}
        idle: dict = {name: [] for name in builds}
        failures: list[str] = []
        cold: dict = {}
        # Cold: the first launch after dropping the page cache (once per build: the machine
        # is shared), then the first search, which reads the model for the first time.
        dropped = False
        for name, command in builds.items():
            dropped = drop_page_cache()
            cold[f"{name}_window_seconds"] = time_to_window(command, work / f"cold-{name}", ":97")["seconds"]
            cold[f"{name}_search_seconds"] = time_to_result(command, work / f"search-{name}")
        for round_ in range(args.rounds):
            order = list(builds) if round_ % 2 == 0 else list(reversed(builds))
            for name in order:
                command = builds[name]
                shot = time_to_window(command, work / f"w-{name}-{round_}", ":97", idle_seconds=10.0)
                if shot["seconds"] is None:  # no window in 120 s: recorded, not fatal
                    failures.append(f"round {round_ + 1} {name}: no window")
                    print(failures[-1])
                    continue
                window[name].append(shot["seconds"])
                idle[name].append(shot.get("idle_pss_bytes", 0))
                search[name].append(time_to_result(command, work / f"search-{name}"))
                print(
                    f"round {round_ + 1} {name:6} window {shot['seconds']:.2f} s  "
                    f"search {search[name][-1]:.2f} s"
                    f"  idle PSS {shot.get('idle_pss_bytes', 0) / 2**20:.0f} MiB"
                )
        result["cold"] = {"page_cache_dropped": dropped, **cold}
        result["failures"] = failures
        result["warm"] = {
            name: {
                "window_seconds": summary(window[name]),
                "search_seconds": summary(search[name]),
                "idle_pss_bytes": summary([float(v) for v in idle[name]]),
            }
            for name in builds
        }
    finally:
        xvfb.terminate()
        shutil.rmtree(work, ignore_errors=True)
    common.write_result(Path(args.out), result)

    mib = 2**20
    print()
    print(
        f"bundle on disk {size['bundle']['bytes'] / mib:,.0f} MiB in {size['bundle']['files']} files; "
        f".deb {size['deb_bytes'] / mib:,.0f} MiB"
    )
    if "trimming" in size:
        tr = size["trimming"]
        print(
            f"trimming saved {tr['saved_bytes'] / mib:,.0f} MiB: {tr['dropped_files']} files dropped "
            f"({tr['dropped_bytes'] / mib:,.0f} MiB), stripping {tr['stripping_saved_bytes'] / mib:,.0f} MiB"
        )
    if "trimming_saved_bytes" in size:
        print(
            f"trimming saved {size['trimming_saved_bytes'] / mib:,.0f} MiB on disk"
            + (
                f", {size['trimming_saved_deb_bytes'] / mib:,.1f} MiB of .deb"
                if "trimming_saved_deb_bytes" in size
                else ""
            )
        )
    print(f"cold (page cache dropped: {dropped}): " + ", ".join(f"{k} {v:.2f}" for k, v in cold.items()))
    print(f"{'':8} {'window s (med, range)':>24} {'search s':>22} {'idle PSS MiB':>14}")
    for name in builds:
        w, s, m = (result["warm"][name][k] for k in ("window_seconds", "search_seconds", "idle_pss_bytes"))
        print(
            f"{name:8} {w['median']:8.2f} ({w['min']:.2f}-{w['max']:.2f}) {s['median']:10.2f} "
            f"({s['min']:.2f}-{s['max']:.2f}) {m['median'] / mib:10.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
