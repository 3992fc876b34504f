"""A stopped scan keeps the tensors already scanned, marked partial."""

from __future__ import annotations

import json

from qcore.scan import open_checkpoint, parse_config, scan, scan_steps

CONFIGS = ("bits=8,granularity=channel", "format=q4_0")


def test_progress_false_stops_with_the_rows_so_far(llama):
    index, _ = llama
    ck = open_checkpoint(index)
    configs = [parse_config(s) for s in CONFIGS]
    full = scan(ck, configs)
    part = scan(ck, configs, progress=lambda done, total, name: done < 3)
    assert part.total == full.total > 3 and part.done == 3 and part.cancelled and not full.cancelled
    assert part.rows == full.rows[: 3 * len(configs)]
    body = json.loads(part.to_json())
    assert body["cancelled"] and body["tensors_scanned"] == 3 and body["tensors_selected"] == full.total


def test_a_caller_that_stops_iterating_keeps_a_consistent_report(llama):
    index, _ = llama
    ck = open_checkpoint(index)
    configs = [parse_config(s) for s in CONFIGS]
    steps = scan_steps(ck, configs)
    report = next(steps)
    assert report.done == 0 and report.rows == [] and report.cancelled
    names = [next(steps).last for _ in range(2)]
    steps.close()  # what an interrupted page run does to the generator
    assert report.done == 2 and [r["tensor"] for r in report.rows] == [n for n in names for _ in configs]
    assert report.model_size()[0]["quantized_tensors"] == 2
