"""Benchmark the streamed label filter on a synthetic OIDv7 human image-label CSV.

Generates ``--rows`` rows (default 10 million) of ``ImageID,Source,LabelName,Confidence`` into a
temporary folder (deleted afterwards, never committed), then filters them in a child process with
`harmscan.openimages.filter_labels` and reports rows/s and the child's peak memory (``maxrss``).

    .venv/bin/python bench/filter_bench.py [--rows 10000000] [--wanted 30] [--chunk-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
HEADER = b"ImageID,Source,LabelName,Confidence\n"
SOURCE = b"verification"
N_CLASSES = 600
REPO = Path(__file__).resolve().parents[1]


def class_ids(n: int) -> list[str]:
    """Fixed-width fake class ids in the Open Images style (``/m/0`` + 5 hex digits)."""
    return [f"/m/0{i:05x}" for i in range(n)]


def write_rows(path: Path, rows: int, seed: int = 0, block: int = 1_000_000) -> None:
    """Write ``rows`` fixed-width label rows, vectorised (a few seconds per 10 million)."""
    rng = np.random.default_rng(seed)
    labels = np.frombuffer("".join(class_ids(N_CLASSES)).encode(), dtype=np.uint8).reshape(-1, 9)
    width = 16 + 1 + len(SOURCE) + 1 + 9 + 1 + 1 + 1
    with path.open("wb") as out:
        out.write(HEADER)
        for start in range(0, rows, block):
            n = min(block, rows - start)
            buf = np.empty((n, width), dtype=np.uint8)
            # ~8 labels per image, as in the real file: image ids repeat in runs.
            image = (np.arange(start, start + n) // 8).astype(np.uint64) * np.uint64(2654435761)
            for digit in range(16):
                buf[:, 15 - digit] = HEX[(image >> np.uint64(4 * digit)) & np.uint64(15)]
            buf[:, 16] = ord(",")
            buf[:, 17 : 17 + len(SOURCE)] = np.frombuffer(SOURCE, dtype=np.uint8)
            at = 17 + len(SOURCE)
            buf[:, at] = ord(",")
            buf[:, at + 1 : at + 10] = labels[rng.integers(0, N_CLASSES, n)]
            buf[:, at + 10] = ord(",")
            buf[:, at + 11] = np.where(rng.random(n) < 0.6, ord("1"), ord("0"))
            buf[:, at + 12] = ord("\n")
            out.write(buf.tobytes())


CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
from harmscan.openimages import filter_labels
wanted = {wanted!r}
t0 = time.perf_counter()
frame = filter_labels({path!r}, wanted, chunk_rows={chunk_rows})
elapsed = time.perf_counter() - t0
print(json.dumps({{"seconds": elapsed, "kept": len(frame)}}))
"""


def run_child(path: Path, wanted: list[str], chunk_rows: int) -> tuple[dict, float]:
    """Filter in a fresh process; return its report and its peak RSS in MiB."""
    code = CHILD.format(repo=str(REPO), wanted=wanted, path=str(path), chunk_rows=chunk_rows)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib < before:
        peak_kib = before
    return json.loads(done.stdout.strip().splitlines()[-1]), peak_kib / 1024


def main() -> None:
    """Generate, filter, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--wanted", type=int, default=30, help="class ids to keep (of 600)")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harmscan-filter-bench-") as tmp:
        path = Path(tmp) / "oidv7-train-annotations-human-imagelabels.csv"
        t0 = time.perf_counter()
        write_rows(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(
            f"generated {args.rows:,} rows ({size_mb:,.0f} MB) in {time.perf_counter() - t0:.1f}s"
        )
        wanted = class_ids(N_CLASSES)[:: N_CLASSES // args.wanted][: args.wanted]
        report, peak_mib = run_child(path, wanted, args.chunk_rows)
    rate = args.rows / report["seconds"]
    print(
        f"filter: {report['seconds']:.2f}s, {rate / 1e6:.2f} M rows/s "
        f"({size_mb / report['seconds']:.0f} MB/s), kept {report['kept']:,} rows"
    )
    print(f"peak memory of the filtering process: {peak_mib:,.0f} MiB")
    print(
        f"targets: >= 1.00 M rows/s -> ratio {rate / 1e6:.2f}; "
        f"< 1536 MiB peak -> ratio {peak_mib / 1536:.2f}"
    )


if __name__ == "__main__":
    main()
