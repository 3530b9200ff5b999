"""Fuzz every target of tests/fuzz/targets.py for a fixed time each, and measure the worst
inputs (bombs, giant single lines) for time and peak memory.

Each target runs in its own child process (so a crash, a hang or a memory blow-up is
seen and measured, never taken for a pass): coverage-guided with atheris (libFuzzer)
where it is installed, else a seeded random-mutation loop. Peak RSS is the child's own
(wait4). Writes bench/results/fuzz.json and prints a table.

    nice -n 10 python bench/fuzz.py --seconds 50          # about 10 minutes
    python bench/fuzz.py --seconds 5 --targets query gguf  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import common

REPO = common.PROJECT_DIR
RESULTS = common.RESULTS_DIR
ARTIFACTS = RESULTS / "fuzz-artifacts"


def _have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# -- inside a child ----------------------------------------------------------------------


def _child_atheris(name: str, seconds: float) -> None:
    import atheris

    # Every module a target reaches, imported here so that its branches are measured
    # (the targets import some of them lazily).
    with atheris.instrument_imports(include=["localsearch", "pypdf", "tomllib", "email", "html", "zipfile"]):
        import localsearch.core.chunking
        import localsearch.core.extract.html
        import localsearch.core.extract.mail
        import localsearch.core.extract.office
        import localsearch.core.extract.pdf
        import localsearch.core.extract.text
        import localsearch.core.models.convert
        import localsearch.core.models.gguf_io
        import localsearch.core.searcher
        import localsearch.core.service
        import localsearch.settings  # noqa: F401
        from tests.fuzz import targets
    target, seeds = targets.FUZZ[name]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # libFuzzer starts from the real seeds (the evaluation PDFs, small valid documents)
    # and mutates them itself, guided by the branches each input reaches.
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    for number, seed in enumerate(seeds()):
        (corpus / f"seed-{number}").write_bytes(seed)
    longest = max(len(seed) for seed in seeds())
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_len={max(4096, min(2 * longest, 1 << 20))}",
        f"-max_total_time={int(seconds)}",
        "-timeout=60",  # a single input taking longer is a hang: reported as a finding
        "-rss_limit_mb=3072",
        f"-artifact_prefix={ARTIFACTS}/{name}-",
        "-print_final_stats=1",
    ]
    atheris.Setup(args, target)
    atheris.Fuzz()


def _child_random(name: str, seconds: float) -> None:
    from tests.fuzz import targets

    target = targets.TARGETS[name]
    rng = random.Random(name)
    runs = failures = 0
    slowest = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = rng.randbytes(rng.choice([8, 16, 64, 256, 1024, 4096]))
        started = time.monotonic()
        try:
            target(data)
        except Exception:
            failures += 1
            if failures <= 3:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                (ARTIFACTS / f"{name}-random-{runs}").write_bytes(data)
                traceback.print_exc()
        slowest = max(slowest, time.monotonic() - started)
        runs += 1
    print(json.dumps({"runs": runs, "failures": failures, "slowest_input_s": round(slowest, 3)}))


# -- worst cases (in a child each) --------------------------------------------------------


def _worst(name: str) -> None:
    from localsearch.core import extract
    from localsearch.core.deadline import Deadline, DeadlineExceeded
    from localsearch.core.indexer import IndexOptions
    from localsearch.errors import ExtractionError
    from tests.fuzz import targets

    started = time.monotonic()
    outcome = "extracted"
    chars = 0
    if name.startswith("zip_bomb_"):
        kind = name.removeprefix("zip_bomb_")
        data = targets.zip_bomb(kind, unpacked=1024 * 1024 * 1024)
        suffix = f".{kind}"
    elif name == "pdf_stream_bomb":
        data = targets.pdf_bomb(unpacked=1024 * 1024 * 1024)
        suffix = ".pdf"
    elif name.startswith("docx_xml_"):  # docx_xml_<MB>mb
        data = targets.docx_paragraphs(int(name.removeprefix("docx_xml_").removesuffix("mb")) * 1024 * 1024)
        suffix = ".docx"
    elif name == "single_line_100mb":
        data = b"x" * (100 * 1024 * 1024)
        suffix = ".txt"
    elif name == "single_line_words_100mb":
        data = b"lava " * (20 * 1024 * 1024)
        suffix = ".txt"
    else:
        raise SystemExit(f"unknown worst case {name}")
    built = time.monotonic() - started
    started = time.monotonic()
    # As the indexer runs it: under the per-file time limit.
    deadline = Deadline(IndexOptions().extract_seconds)
    try:
        try:
            document = extract.extract(Path(f"worst{suffix}"), data)
        finally:
            deadline.disarm()
        chars = document.char_count
        if name.startswith("single_line"):
            from localsearch.core.chunking import chunk_document

            chunks = chunk_document(document, targets._chunk_tokenize, max_tokens=254, overlap=32)
            outcome = f"extracted and chunked ({len(chunks):,} chunks)"
    except ExtractionError as exc:
        outcome = f"refused: {exc}"
    except DeadlineExceeded:
        outcome = f"stopped at the {IndexOptions().extract_seconds:g} s extraction limit"
    print(
        json.dumps(
            {
                "input_bytes": len(data),
                "build_seconds": round(built, 2),
                "seconds": round(time.monotonic() - started, 2),
                "chars": chars,
                "outcome": outcome,
            }
        )
    )


WORST = [
    "pdf_stream_bomb",
    "docx_xml_190mb",
    "docx_xml_63mb",
    "zip_bomb_docx",
    "zip_bomb_odt",
    "zip_bomb_epub",
    "single_line_100mb",
    "single_line_words_100mb",
]


# -- the parent ------------------------------------------------------------------------


def _run_child(args: list[str], timeout: float) -> tuple[int, str, str, float, float]:
    """(exit status, stdout, stderr, seconds, peak RSS in MB) of one child."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=out, stderr=err, env=env, cwd=REPO)
        deadline = started + timeout
        status = None
        rusage = None
        while time.monotonic() < deadline:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.2)
        else:
            proc.kill()
            _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            rusage.ru_maxrss / 1024 if rusage else 0.0,
        )


def _parse_libfuzzer(stderr: str) -> dict[str, object]:
    runs = re.findall(r"Done (\d+) runs in (\d+) second", stderr)
    stat_runs = re.findall(r"stat::number_of_executed_units: (\d+)", stderr)
    cov = re.findall(r"cov: (\d+)", stderr)
    count = int(runs[-1][0]) if runs else int(stat_runs[-1]) if stat_runs else 0
    if not count:
        execs = re.findall(r"#(\d+)\s", stderr)
        count = int(execs[-1]) if execs else 0
    return {"runs": count, "coverage_edges": int(cov[-1]) if cov else None}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=50, help="fuzzing time per target")
    parser.add_argument("--targets", nargs="*", help="targets to fuzz (default: all)")
    parser.add_argument("--engine", choices=["auto", "atheris", "random"], default="auto")
    parser.add_argument("--no-worst", action="store_true", help="skip the worst-case measurements")
    parser.add_argument("--worst-only", nargs="*", help="only these worst cases (all if none named)")
    parser.add_argument("--output", type=Path, default=RESULTS / "fuzz.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--worst", help=argparse.SUPPRESS)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    if args.worst:
        _worst(args.worst)
        return
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _have_atheris() else "random"
    if args.child:
        (_child_atheris if engine == "atheris" else _child_random)(args.child, args.seconds)
        return

    from tests.fuzz.targets import FUZZ

    names = [] if args.worst_only is not None else args.targets or list(FUZZ)
    worst_cases = args.worst_only or WORST
    report: dict[str, object] = {
        "benchmark": "fuzz",
        "engine": engine,
        "seconds_per_target": args.seconds,
        "python": sys.version.split()[0],
        "targets": {},
        "worst_cases": {},
    }
    print(f"{'target':<16} {'engine':<8} {'runs':>10} {'runs/s':>8} {'edges':>6} {'peak MB':>8}  outcome")
    for name in names:
        code, out, err, seconds, peak = _run_child(
            ["--child", name, "--seconds", str(args.seconds), "--engine", engine],
            timeout=args.seconds * 3 + 120,
        )
        if engine == "atheris":
            stats = _parse_libfuzzer(err)
            crashed = code != 0
            start = err.find("=== Uncaught Python exception")
            finding = (err[start:][:3000] if start >= 0 else err[-3000:]) if crashed else ""
        else:
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            parsed = json.loads(lines[-1]) if lines else {}
            stats = {
                "runs": parsed.get("runs", 0),
                "coverage_edges": None,
                "slowest_input_s": parsed.get("slowest_input_s"),
            }
            crashed = code != 0 or bool(parsed.get("failures"))
            finding = err[-3000:] if crashed else ""
        entry = {
            **stats,
            "seconds": round(seconds, 1),
            "exit_status": code,
            "peak_rss_mb": round(peak, 1),
            "runs_per_second": round(int(stats["runs"] or 0) / max(seconds, 1e-9), 1),  # type: ignore[call-overload]
            "crashed": crashed,
            "finding": finding.replace(f"{REPO}{os.sep}", ""),
        }
        report["targets"][name] = entry  # type: ignore[index]
        outcome = "FINDING" if crashed else "no crash"
        print(
            f"{name:<16} {engine:<8} {entry['runs']:>10,} {entry['runs_per_second']:>8} "
            f"{entry['coverage_edges'] or '-':>6} {entry['peak_rss_mb']:>8}  {outcome}",
            flush=True,
        )
    if not args.no_worst:
        print(f"\n{'worst case':<24} {'seconds':>8} {'peak MB':>8}  outcome")
        for name in worst_cases:
            code, out, err, seconds, peak = _run_child(["--worst", name], timeout=600)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            parsed = json.loads(lines[-1]) if lines else {"outcome": f"child failed ({code}): {err[-500:]}"}
            entry = {
                **parsed,
                "exit_status": code,
                "wall_seconds": round(seconds, 1),
                "peak_rss_mb": round(peak, 1),
            }
            report["worst_cases"][name] = entry  # type: ignore[index]
            print(
                f"{name:<24} {parsed.get('seconds', '-'):>8} {entry['peak_rss_mb']:>8}  "
                f"{parsed['outcome'][:90]}",
                flush=True,
            )
    report["machine"] = common.machine()
    print()
    common.write_result(args.output, report)


if __name__ == "__main__":
    main()
