"""One serving consumer in a process of its own, for `serve_bench.py --standalone`.

Loads a model folder (no registry) and runs `ServingConsumer` with the settings overrides given,
as ``harmscan serve`` would (no torch, no MLflow imported), until it has committed ``--count``
messages. Then prints one JSON line: the process's peak resident memory (``VmHWM``), its decode
workers' resident memory, its CPU seconds, the wall-clock time and the full (generation 2)
garbage collections while it served, with the longest pause (``serving.gc_freeze`` on or off).

    .venv/bin/python bench/standalone_consumer.py FOLDER PRECISION COUNT OVERRIDE...
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conf.loader import load_settings  # noqa: E402
from serving.classifier import BatchClassifier  # noqa: E402
from serving.consumer import ServingConsumer  # noqa: E402
from serving.decoding import pool_rss_bytes  # noqa: E402
from serving.service import make_classifier, make_consumer, make_producer  # noqa: E402
from serving.source import load_model_folder  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_cpu_seconds(classifier: BatchClassifier) -> float:
    """CPU seconds of the live decode workers together."""
    return sum(cpu_seconds(pid) for pid in classifier.decoder.pids())


class FullCollections:
    """Counts the full (generation 2) garbage collections and times their pauses."""

    def __init__(self, skip_first: bool) -> None:
        self.skip_first = skip_first  # the loop's own collection before it freezes the heap
        self.pauses_ms: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses_ms.append((time.perf_counter() - self._started) * 1000)

    def report(self) -> dict[str, float]:
        """Collections, the longest and the total pause (ms), without the loop's own first one
        (``serving.gc_freeze`` collects once before it freezes)."""
        pauses = self.pauses_ms[1:] if self.skip_first else self.pauses_ms
        return {
            "gc_full_collections": len(pauses),
            "gc_full_max_ms": round(max(pauses, default=0.0), 1),
            "gc_full_total_ms": round(sum(pauses), 1),
        }


def stage_means(loop: ServingConsumer) -> dict[str, float]:
    """The loop's mean milliseconds per batch in each stage (harmscan_stage_seconds)."""
    get = loop.metrics.registry.get_sample_value
    batches = get("harmscan_batch_size_count") or 1.0
    stages = ("poll", "decode_wait", "infer", "deliver", "commit")
    return {
        stage: round((get("harmscan_stage_seconds_sum", {"stage": stage}) or 0.0)
                     / batches * 1000, 1)
        for stage in stages
    }  # fmt: skip


def main() -> None:
    folder, precision, count, *overrides = sys.argv[1:]
    settings = load_settings("ci", overrides, env={})
    serving = settings.serving
    model = load_model_folder(
        Path(folder), name="bench", version="1", runtime="onnx",
        threads=serving.intra_op_threads, workers=serving.inference_workers,
        warmup_batch=serving.batch_size, precision=precision, max_batch=serving.batch_size,
    )  # fmt: skip
    classifier = make_classifier(settings)
    loop = ServingConsumer(
        settings, model, classifier, make_consumer(settings), make_producer(settings),
        max_messages=int(count),
    )  # fmt: skip
    print(json.dumps({"ready": True}), flush=True)
    start = time.monotonic()
    cpu_start, workers_start = cpu_seconds(), workers_cpu_seconds(classifier)
    collections = FullCollections(skip_first=serving.gc_freeze)
    loop.run()
    images = max(1, loop.committed)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        # CPU per image while serving (the load before it not counted): the loop with its
        # inference threads and Kafka clients, and the decode workers.
        "consumer_cpu_ms_per_image": round((cpu_seconds() - cpu_start) / images * 1000, 2),
        "workers_cpu_ms_per_image": round(
            (workers_cpu_seconds(classifier) - workers_start) / images * 1000, 2
        ),
        "stages_ms_per_batch": stage_means(loop),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "decode_workers_rss_mb": round(pool_rss_bytes(classifier.decoder) / 2**20, 1),
        "decode_workers": len(classifier.decoder.pids()),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "wall_s": round(time.monotonic() - start, 2),
        "torch_imported": "torch" in sys.modules,
        **collections.report(),
    }
    classifier.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
