"""The scan on a 2-worker Dask LocalCluster gives the serial scan's rows."""

from __future__ import annotations

import json

import pytest

from qcore.scan import open_checkpoint, parse_config, scan
from qcore.scan.cluster import MALLOC_THRESHOLD, local_cluster

distributed = pytest.importorskip("distributed")


def _worker_state() -> dict:
    import os
    import sys

    return {
        "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
        "preloaded": "qcore.scan.measure" in sys.modules,
    }


def test_local_cluster_matches_serial(llama):
    index, _ = llama
    shards = sorted(index.parent.glob("*.safetensors"))
    shards[0].write_bytes(b"broken")  # one shard error row, the other shard scanned
    ck = open_checkpoint(index)
    configs = [parse_config("bits=8,granularity=channel"), parse_config("bits=4,granularity=group,group_size=32")]
    serial = scan(ck, configs)
    seen = []
    with (
        local_cluster(2) as cluster,
        distributed.Client(cluster) as client,
    ):
        workers = client.run(_worker_state)  # before any task: the preload alone imported qcore's scan
        remote = scan(ck, configs, progress=lambda done, total, name: seen.append(name), client=client)
    assert len(workers) == 2
    for env in workers.values():  # one BLAS thread per worker process, malloc thresholds raised, qcore preloaded
        assert env == {"threads": "1", "trim": str(MALLOC_THRESHOLD), "preloaded": True}
    assert remote.rows == serial.rows
    assert len(serial.error_rows) == 1 and serial.ok_rows
    assert sorted(seen) == sorted(r.name for r in ck.tensors)


def test_cli_workers_give_the_serial_report(llama, tmp_path, capsys):
    from qcore.cli import main

    index, _ = llama
    reports = {}
    for name, extra in (("serial", []), ("dask", ["--workers", "2"])):
        out = tmp_path / f"{name}.json"
        assert main(["scan", str(index), "--only-2d", "--out", str(out), *extra]) == 0
        reports[name] = json.loads(out.read_text())
    assert capsys.readouterr().err == ""
    assert reports["dask"]["rows"] == reports["serial"]["rows"] and reports["serial"]["rows"]
