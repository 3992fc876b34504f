"""Model scan benchmark: throughput, peak memory and the Dask speed-up on a sharded BF16 LLaMA-style checkpoint.

    python bench/scan.py [--path DIR] [--mse-filter REGEX] [--repeat N] [--json]

The checkpoint (``tools/make_llama_checkpoint.py``, ~440 MB, largest tensor 65.5 MB) is written to ``--path``
when missing. Each measurement runs in a fresh Python process, so its peak RSS (``ru_maxrss``) is its own:

- serial "INT8 per-channel minmax" over the whole checkpoint, and "INT4 g128 mse" over the tensors matching
  ``--mse-filter`` (per-group MSE searches 1920 candidates per group: far slower);
- MB/s = stored BF16 bytes / seconds, by the wall clock and per CPU second (``time.process_time``; the
  machine is shared, so the CPU figure is the per-core one);
- peak memory = peak RSS - RSS after imports and listing, against 2 x the largest tensor + CHUNK_OVERHEAD_MB;
- Dask: LocalCluster of 2 worker processes (1 thread each, qcore imported as they start) against the serial wall
  time, serial and Dask alternated ``--repeat`` times in the same run (the machine is shared: one pair alone says
  little). The speed-up excludes the cluster start-up (stated separately, with the end-to-end ratio that includes
  it), with the workers' CPU, the CPU other processes took meanwhile (``/proc/stat``) and the CPU-bound
  estimate serial CPU / busiest worker's CPU (what two free cores give when no task waits); the rows must equal
  the serial ones;
- reference: one ``np.histogram(x, 2048)`` pass over a 11.5M-element tensor, in BF16 MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK_OVERHEAD_MB = 128
"""Stated fixed overhead beyond the interpreter and imports: one chunk's working set (1M elements of float32/float64
temporaries, or 1024 groups' histograms and search matrix)."""
INT8 = "bits=8,granularity=channel,method=minmax"
INT4_MSE = "bits=4,granularity=group,group_size=128,method=mse"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _busy_s() -> float:
    """CPU seconds the whole machine has been busy (``/proc/stat``; 0 where it does not exist)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(path: str, spec: str, pattern: str | None, workers: int) -> dict:
    """One scan in this process: seconds (wall, CPU), bytes scanned, peak and baseline RSS."""
    from qcore.scan import TensorFilter, open_checkpoint, parse_config, scan

    ck = open_checkpoint(path)
    select = TensorFilter(pattern, only_2d=True)
    refs = [r for r in ck.tensors if select(r)]
    configs = [parse_config(spec)]
    client = cluster = None
    startup = 0.0
    if workers:
        from distributed import Client

        from qcore.scan.cluster import local_cluster

        t = time.perf_counter()
        cluster = local_cluster(workers)
        client = Client(cluster)
        startup = time.perf_counter() - t
    base = _rss_mb()
    before = client.run(time.process_time) if client is not None else {}
    wall, cpu, busy = time.perf_counter(), time.process_time(), _busy_s()
    report = scan(ck, configs, select, client=client)
    wall, cpu, busy = time.perf_counter() - wall, time.process_time() - cpu, _busy_s() - busy
    after = client.run(time.process_time) if client is not None else {}
    per_worker = sorted(after[w] - t for w, t in before.items())
    if client is not None:
        client.close()
        cluster.close()
    return {
        "spec": spec,
        "workers": workers,
        "tensors": len(refs),
        "bytes": sum(r.nbytes for r in refs),
        "largest_tensor_bytes": max(r.nbytes for r in refs),
        "wall_s": wall,
        "cpu_s": cpu,
        "workers_cpu_s": sum(per_worker),
        "busiest_worker_cpu_s": per_worker[-1] if per_worker else 0.0,
        "others_cpu_s": max(0.0, busy - cpu - sum(per_worker)),
        "startup_s": startup,
        "baseline_rss_mb": base,
        "peak_rss_mb": _rss_mb(),
        "rows": report.rows,
    }


def _child(path: str, spec: str, pattern: str | None, workers: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", "--path", path, "--spec", spec, "--workers", str(workers)]
    if pattern:
        cmd += ["--mse-filter", pattern]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)


def histogram_reference(path: str) -> float:
    """BF16 MB/s of one np.histogram(x, 2048) pass (x in float32) over the first MLP weight."""
    import numpy as np

    from qcore.scan import open_checkpoint, read_tensor

    ref = next(r for r in open_checkpoint(path).tensors if r.name.endswith("mlp.up_proj.weight"))
    x = np.asarray(read_tensor(ref), dtype=np.float32)
    best = min(_timed(lambda: np.histogram(x, 2048)) for _ in range(3))
    return ref.nbytes / best / 1e6


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description="model scan benchmark")
    ap.add_argument("--path", default="/tmp/qx_llama")
    ap.add_argument("--mse-filter", default=r"layers\.0\.self_attn\.[qk]_proj")
    ap.add_argument("--repeat", type=int, default=3, help="serial/Dask pairs to run (default 3)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a.path, a.spec, a.mse_filter if a.spec == INT4_MSE else None, a.workers)))
        return
    if not (Path(a.path) / "model.safetensors.index.json").exists():
        from tools.make_llama_checkpoint import make

        make(Path(a.path))
    load = os.getloadavg()[0]
    ref_mbs = histogram_reference(a.path)
    mse = _child(a.path, INT4_MSE, a.mse_filter)
    mse.pop("rows")
    pairs = []
    for _ in range(max(1, a.repeat)):
        serial = _child(a.path, INT8, None)
        dask = _child(a.path, INT8, None, workers=2)
        same = dask.pop("rows") == serial.pop("rows")
        pairs.append(
            {
                "serial": serial,
                "dask_2_workers": dask,
                "dask_same_rows": same,
                "dask_speedup": serial["wall_s"] / dask["wall_s"],
                "dask_speedup_with_startup": serial["wall_s"] / (dask["wall_s"] + dask["startup_s"]),
                # what two free cores would give if tasks never waited: serial CPU over the busiest worker's CPU
                "dask_cpu_bound_speedup": serial["cpu_s"] / dask["busiest_worker_cpu_s"],
            }
        )
    results = {"load_average_1min": load, "histogram_reference_mb_s": ref_mbs, "int4_g128_mse": mse, "pairs": pairs}
    if a.json:
        print(json.dumps(results, indent=1))
        return
    print(f"load average at start {load:.1f} (2 cores; the machine is shared, so wall times are noisy)")
    print(f"reference: one np.histogram(x, 2048) pass = {ref_mbs:.0f} MB/s (BF16 bytes)")
    for label, r in [("INT8 per-channel minmax", p["serial"]) for p in pairs] + [("INT4 g128 mse", mse)]:
        mb = r["bytes"] / 1e6
        extra = r["peak_rss_mb"] - r["baseline_rss_mb"]
        largest = r["largest_tensor_bytes"] / 1e6
        print(
            f"{label}: {r['tensors']} tensors, {mb:.0f} MB in {r['wall_s']:.1f} s wall ({mb / r['wall_s']:.0f} MB/s), "
            f"{r['cpu_s']:.1f} s CPU ({mb / r['cpu_s']:.0f} MB/s per core); peak RSS {r['peak_rss_mb']:.0f} MB = "
            f"{r['baseline_rss_mb']:.0f} MB after imports + {extra:.0f} MB "
            f"(largest tensor {largest:.1f} MB); within 2 x largest + {CHUNK_OVERHEAD_MB} MB: "
            f"{'yes' if extra <= 2 * largest + CHUNK_OVERHEAD_MB else 'NO'}"
        )
    for p in pairs:
        d, s = p["dask_2_workers"], p["serial"]
        print(
            f"Dask LocalCluster 2 workers: {d['wall_s']:.2f} s vs serial {s['wall_s']:.2f} s -> speed-up "
            f"{p['dask_speedup']:.2f}x (cluster start {d['startup_s']:.1f} s not included; "
            f"{p['dask_speedup_with_startup']:.2f}x with it); workers' CPU {d['workers_cpu_s']:.1f} s vs serial "
            f"{s['cpu_s']:.1f} s; other processes' CPU during the two runs {d['others_cpu_s']:.1f} s and "
            f"{s['others_cpu_s']:.1f} s; same rows as serial: {p['dask_same_rows']}"
        )
    bound = sorted(p["dask_cpu_bound_speedup"] for p in pairs)
    print(
        f"CPU-bound estimate for 2 free cores (serial CPU / busiest worker's CPU): "
        f"median {bound[len(bound) // 2]:.2f}x, "
        f"range {bound[0]:.2f}-{bound[-1]:.2f}x"
    )
    speedups = sorted(p["dask_speedup"] for p in pairs)
    print(
        f"Dask speed-up over {len(pairs)} pairs: median {speedups[len(speedups) // 2]:.2f}x, "
        f"range {speedups[0]:.2f}-{speedups[-1]:.2f}x"
    )


if __name__ == "__main__":
    main()
