"""The CLI command shown for a configuration, and what it says it cannot reproduce."""

from __future__ import annotations

import shlex
from itertools import pairwise

from qcore import QuantScheme
from ui.state import Settings, cli_command


def test_command_carries_every_scheme_flag_and_the_convention() -> None:
    s = Settings(
        QuantScheme(bits=4, signed=True, narrow_range=True, granularity="group", axis=1, group_size=64),
        "percentile",
        (("bins", 4096), ("percentile", 99.9)),
        "tensorrt",
    )
    command, caveats = cli_command(s, "data/w.safetensors", "layer.weight")
    args = shlex.split(command)
    assert args[:5] == ["python", "-m", "qcore", "calibrate", "data/w.safetensors"]
    flags = dict(pairwise(args[5:]))  # each flag -> the word after it
    assert flags["--tensor"] == "layer.weight" and flags["--method"] == "percentile" and flags["--bits"] == "4"
    assert flags["--granularity"] == "group" and flags["--axis"] == "1" and flags["--group-size"] == "64"
    assert flags["--convention"] == "tensorrt" and flags["--percentile"] == "99.9" and flags["--bins"] == "4096"
    assert "--narrow-range" in args and "--unsigned" not in args and args[-1] == "--json"
    assert caveats == []


def test_options_the_cli_cannot_express_are_named() -> None:
    admm = Settings(
        QuantScheme(),
        "admm",
        (("bins", None), ("init_divisor", 1.25), ("max_iter", 50), ("max_raw", 1048576), ("tol", 1e-9)),
        "default",
    )
    command, caveats = cli_command(admm, "x.npy", None)
    assert "--bins" not in command and "--tensor" not in command
    assert any(c.startswith("bins:") for c in caveats)
    assert any(c.startswith("max_iter=50") for c in caveats)
    rounding = Settings(QuantScheme(rounding="half_away"), "minmax", (), "default")
    assert any("half away" in c for c in cli_command(rounding, "x.npy", None)[1])
