"""Whole-checkpoint scans: every tensor under several configurations, one tensor in memory at a time.

``open_checkpoint(path) -> Checkpoint`` lists tensor references; ``scan(checkpoint, configs)``
measures them (serially or on Dask distributed) into a :class:`ScanReport`;
``report.plan(target_bpw)`` chooses a configuration per tensor within a size budget.
"""

from .checkpoint import Checkpoint, ReadError, TensorRef, open_checkpoint, read_tensor
from .config import DEFAULT_SPECS, ScanConfig, parse_config
from .names import NameParts, parse_name
from .plan import Candidate, Plan, make_plan
from .runner import ScanReport, TensorFilter, scan, scan_steps

__all__ = [
    "DEFAULT_SPECS",
    "Candidate",
    "Checkpoint",
    "NameParts",
    "Plan",
    "ReadError",
    "ScanConfig",
    "ScanReport",
    "TensorFilter",
    "TensorRef",
    "make_plan",
    "open_checkpoint",
    "parse_config",
    "parse_name",
    "read_tensor",
    "scan",
    "scan_steps",
]
