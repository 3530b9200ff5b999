"""The app bundle's portable llama.cpp against `make setup`'s native build.

1. Throughput: the same texts embedded by the engine (LlamaEmbedder, in process, as the
   engine child runs it) under two Pythons: the dev venv (llama.cpp built with
   -march=native) and the bundle's venv (GGML_NATIVE=OFF, GGML_BACKEND_DL,
   GGML_CPU_ALL_VARIANTS: the libraries PyInstaller copies into the app). Each round runs
   one fresh process per build, the order alternating, and each build reports its median
   round and the spread, because the machine is shared. Texts: the first --docs SciFact
   documents, cut to 256 tokens.
2. Older CPUs: the frozen app's `self-test --in-process` natively and under
   `qemu-x86_64 -cpu Nehalem` / `-cpu Haswell` (qemu-user runs one process and does not
   follow exec, hence in process); each must pass, and its probe embedding must equal the
   native one within cosine 0.999. Also records which CPU variant loads natively.

    python bench/portable_build.py [--dev .venv/bin/python] [--bundle build/venv-bundle/bin/python]
                                   [--app dist/localsearch/localsearch] [--rounds 7]

Writes bench/results/portable_build.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
from common import PROJECT_DIR

RESULTS = common.RESULTS_DIR / "portable_build.json"


def worker(model: str, docs: int) -> None:
    """One timed pass in this process; prints a JSON line."""
    sys.path.insert(0, str(PROJECT_DIR))
    from localsearch.core.embedding import LlamaEmbedder, cpu_backend, cpu_features

    texts = common.scifact_texts(docs)
    engine = LlamaEmbedder(model, max_tokens=256)
    sequences = [engine.tokenize(t)[:256] for t in texts]
    engine.embed_tokens(sequences[:8])  # warm-up: first-touch of the weights
    started = time.perf_counter()
    engine.embed_tokens(sequences)
    seconds = time.perf_counter() - started
    tokens = sum(len(s) for s in sequences)
    print(
        json.dumps(
            {
                "tokens": tokens,
                "seconds": seconds,
                "tokens_per_s": tokens / seconds,
                "cpu_backend": cpu_backend(),
                "cpu_features": cpu_features().strip(),
                "llama_cpp": str(Path(sys.modules["llama_cpp"].__file__).parent),
            }
        )
    )
    engine.close()


def _project_relative(path: str) -> str:
    """A path inside the checkout as the checkout names it: results must not name this machine."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(PROJECT_DIR))
    except ValueError:
        return Path(path).name


def run_worker(python: str, model: str, docs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_DIR))
    done = subprocess.run(
        [python, __file__, "--worker", model, "--docs", str(docs)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(builds: dict[str, str], model: str, docs: int, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in builds}
    for round_ in range(rounds):
        order = list(builds) if round_ % 2 == 0 else list(reversed(builds))
        for name in order:
            result = run_worker(builds[name], model, docs)
            runs[name].append(result)
            print(
                f"  round {round_ + 1}: {name:8} {result['tokens_per_s']:8,.0f} tokens/s "
                f"({result['cpu_backend']})"
            )
    summary = {}
    for name, results in runs.items():
        rates = [r["tokens_per_s"] for r in results]
        summary[name] = {
            "python": _project_relative(builds[name]),
            "llama_cpp": _project_relative(results[0]["llama_cpp"]),
            "cpu_backend": results[0]["cpu_backend"],
            "cpu_features": results[0]["cpu_features"],
            "tokens": results[0]["tokens"],
            "tokens_per_s_median": statistics.median(rates),
            "tokens_per_s_min": min(rates),
            "tokens_per_s_max": max(rates),
            "tokens_per_s_all": rates,
        }
    names = list(builds)
    summary["portable_over_native_median"] = (
        summary[names[1]]["tokens_per_s_median"] / summary[names[0]]["tokens_per_s_median"]
    )
    # The ratio within each round (same moment, same load) is steadier than the medians.
    paired = [
        b["tokens_per_s"] / a["tokens_per_s"] for a, b in zip(runs[names[0]], runs[names[1]], strict=True)
    ]
    summary["portable_over_native_per_round"] = paired
    summary["portable_over_native_per_round_median"] = statistics.median(paired)
    return summary


def one_process_env(app: Path) -> dict[str, str]:
    """PyInstaller's Linux bootloader re-executes itself once (to set LD_LIBRARY_PATH), and
    qemu-user does not follow exec: the second process would run natively. These are the
    variables the bootloader hands its second process; set beforehand, it runs in one."""
    internal = app.parent / "_internal"
    return {
        "_PYI_APPLICATION_HOME_DIR": str(internal),
        "_PYI_ARCHIVE_FILE": str(app),
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "LD_LIBRARY_PATH": str(internal),
    }


def self_test(command: list[str], home: Path, extra_env: dict[str, str] | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LOCALSEARCH_HOME"] = str(home)
    env.update(extra_env or {})
    started = time.monotonic()
    done = subprocess.run(
        [*command, "self-test", "--in-process", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.monotonic() - started
    if done.returncode != 0 or not done.stdout.strip():
        return {"ok": False, "reason": done.stderr[-1500:], "wall_seconds": wall}
    result = json.loads(done.stdout)
    result["wall_seconds"] = wall
    return result


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def older_cpus(app: Path, work: Path) -> dict:
    native = self_test([str(app)], work / "native", one_process_env(app))
    out: dict = {
        "native": {k: native.get(k) for k in ("ok", "cpu_variant", "cpu_features", "wall_seconds", "reason")}
    }
    print(f"  native   {native.get('cpu_variant')}  ok={native.get('ok')}")
    for cpu in ("Nehalem", "Haswell"):
        run = self_test(["qemu-x86_64", "-cpu", cpu, str(app)], work / cpu, one_process_env(app))
        entry = {k: run.get(k) for k in ("ok", "cpu_variant", "cpu_features", "wall_seconds", "reason")}
        if run.get("probe") and native.get("probe"):
            entry["cosine_to_native"] = cosine(native["probe"], run["probe"])
            answers = run.get("answers", [])
            entry["answers_right"] = sum(1 for _, expected, got in answers if expected == got)
        out[cpu] = entry
        print(
            f"  {cpu:8} {entry.get('cpu_variant')}  ok={entry['ok']}  "
            f"cosine {entry.get('cosine_to_native', float('nan')):.6f}"
            f"  {entry['wall_seconds']:.0f} s"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument(
        "--dev", default=str(PROJECT_DIR / ".venv" / "bin" / "python"), help="the native build's Python"
    )
    parser.add_argument(
        "--bundle",
        default=str(PROJECT_DIR / "build" / "venv-bundle" / "bin" / "python"),
        help="the portable build's Python",
    )
    parser.add_argument(
        "--app", default=str(PROJECT_DIR / "dist" / "localsearch" / "localsearch"), help="the frozen app"
    )
    parser.add_argument("--model", default=str(PROJECT_DIR / "gguf" / "all-minilm-l6-v2.Q8_0.gguf"))
    parser.add_argument("--docs", type=int, default=300, help="SciFact documents a pass embeds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-qemu", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true", help="keep the throughput of --out")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.docs)
        return 0

    import tempfile

    result: dict = {
        "date": common.now(),
        "machine": common.machine(),
        "model": Path(args.model).name,
        "docs": args.docs,
        "rounds": args.rounds,
        "in_sample": "not applicable: throughput and fidelity, no relevance judgments",
    }
    if args.skip_throughput:
        result = json.loads(Path(args.out).read_text())
    else:
        print(f"throughput, {args.docs} SciFact documents, {Path(args.model).name}, {args.rounds} rounds")
        result["throughput"] = throughput(
            {"native": args.dev, "portable": args.bundle}, args.model, args.docs, args.rounds
        )
    t = result["throughput"]
    if not args.skip_qemu:
        print("older CPUs (frozen app, in process)")
        with tempfile.TemporaryDirectory() as tmp:
            result["older_cpus"] = older_cpus(Path(args.app), Path(tmp))
    common.write_result(Path(args.out), result)

    print()
    common.print_table(
        ("build", "backend", "median tok/s", "min", "max"),
        [
            (
                name,
                t[name]["cpu_backend"],
                f"{t[name]['tokens_per_s_median']:,.0f}",
                f"{t[name]['tokens_per_s_min']:,.0f}",
                f"{t[name]['tokens_per_s_max']:,.0f}",
            )
            for name in ("native", "portable")
        ],
    )
    paired = t["portable_over_native_per_round"]
    print(
        f"portable / native: medians {t['portable_over_native_median']:.3f}, "
        f"per round median {t['portable_over_native_per_round_median']:.3f} "
        f"(range {min(paired):.3f}-{max(paired):.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
