"""Where the indexing engine's time goes: `perf record` on the app's document engine (its
child process, all threads) while it embeds SciFact documents as the indexer feeds it,
then the share of CPU samples per function and per library.

    python bench/engine_profile.py                 # writes bench/results/engine_profile.json
    python bench/engine_profile.py --seconds 20 --docs 300

Needs Linux `perf` (perf_event_paranoid <= 2 lets a user profile their own processes).
The shares are of the engine's CPU samples, so other load on the machine changes little
in them (it changes how many samples there are, not where they fall).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common

sys.path.insert(0, str(common.PROJECT_DIR))

from localsearch.core.embedding import default_threads
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.indexer import group_tokens

RESULTS = common.RESULTS_DIR / "engine_profile.json"
LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$")
# What an unnamed hot spot in a stripped ggml library computes, from the instructions
# around it (first match wins).
KINDS = (
    (("vpdpbusd", "vpmaddubsw", "vpdpwssd", "vpmaddwd"), "int8 dot products (quantized matrix products)"),
    (("vdpbf16ps",), "bf16 dot products"),
    (("vcvtph2ps", "vcvtneps2bf16"), "fp16/bf16 conversion"),
    (("vfmadd", "vfnmadd", "vmulps", "vaddps"), "fp32 vector arithmetic (FMA, attention, norms)"),
)


def classify(library_path: Path | None, address: int) -> str:
    """The kind of work at `address` of a stripped library, by the SIMD instructions
    within 96 bytes of it."""
    if library_path is None or shutil.which("objdump") is None:
        return "unknown"
    window = [f"--start-address={max(0, address - 96)}", f"--stop-address={address + 96}"]
    text = subprocess.run(
        ["objdump", "-d", *window, str(library_path)],
        capture_output=True,
        text=True,
    ).stdout
    for mnemonics, kind in KINDS:
        if any(m in text for m in mnemonics):
            return kind
    return "other code"


def library_file(name: str) -> Path | None:
    import llama_cpp

    root = Path(llama_cpp.__file__).resolve().parent
    return next(iter(sorted(root.rglob(name))), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--model", type=Path, help="a GGUF (default: the app's default model file)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed")

    model = args.model or common.resolve_model()
    texts = common.scifact_texts(args.docs)
    engine = ProcessEmbedder(model, max_tokens=256, threads=1, contexts=args.threads)
    sequences = [engine.tokenize(t)[: engine.max_tokens - engine.special_tokens] for t in texts]
    per_request = group_tokens(engine)
    requests: list[list[list[int]]] = [[]]
    used = 0
    for sequence in sequences:  # as the indexer groups files
        requests[-1].append(sequence)
        used += len(sequence)
        if per_request and used >= per_request:
            requests.append([])
            used = 0
    stop = threading.Event()
    done = {"tokens": 0}

    def embed() -> None:
        while not stop.is_set():
            for request in requests:
                if stop.is_set():
                    break
                engine.embed_tokens(request)
                done["tokens"] += sum(len(s) + engine.special_tokens for s in request)

    worker = threading.Thread(target=embed, daemon=True)
    worker.start()
    time.sleep(1.0)
    data = common.SCRATCH_DIR / "engine_profile.perf.data"
    data.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    before = done["tokens"]
    record = ["perf", "record", "-F", "999", "-o", str(data), "-p", str(engine.pid)]
    subprocess.run(
        [*record, "--", "sleep", f"{args.seconds}"],
        check=True,
        capture_output=True,
    )
    rate = (done["tokens"] - before) / (time.perf_counter() - started)
    stop.set()
    worker.join()
    contexts = engine.contexts
    engine.close()

    def report(sort: str) -> list[dict[str, Any]]:
        command = ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--percent-limit", "0.05"]
        out = subprocess.run(
            [*command, "--sort", sort],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = []
        for line in out.splitlines():
            if sort == "dso":
                match = re.match(r"^\s*([\d.]+)%\s+(.+?)\s*$", line)
                if match:
                    rows.append({"percent": float(match.group(1)), "library": match.group(2)})
            else:
                match = LINE.match(line)
                if match:
                    percent, library, function = match.groups()
                    rows.append({"percent": float(percent), "library": library, "function": function})
        return rows

    functions, libraries = report("dso,sym"), report("dso")
    # Stripped ggml builds name no static function: group those samples by what they compute.
    by_kind: dict[str, float] = {}
    for row in functions:
        if row["function"].startswith("0x"):
            row["kind"] = classify(library_file(row["library"]), int(row["function"], 16))
        else:
            row["kind"] = row["function"]
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0.0) + row["percent"]
    by_kind["(spots under 0.05 % each)"] = max(0.0, 100.0 - sum(by_kind.values()))
    result = {
        "benchmark": "engine_profile",
        "date": common.now(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": model.name,
        "contexts": contexts,
        "seconds": args.seconds,
        "tokens_per_s_while_profiled": round(rate),
        "by_kind": {k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        "by_library": libraries,
        "by_function": functions,
        "machine": common.machine(model),
    }
    common.write_result(args.out, result)
    print(f"{contexts} contexts x 1 thread, {rate:,.0f} tokens/s while profiled; CPU samples by work:")
    shares = sorted(by_kind.items(), key=lambda kv: -kv[1])
    common.print_table(("work", "%"), [(kind[:70], f"{share:.1f}") for kind, share in shares if share >= 0.5])
    common.print_table(("library", "%"), [(row["library"], f"{row['percent']:.1f}") for row in libraries])
    return 0


if __name__ == "__main__":
    sys.exit(main())
