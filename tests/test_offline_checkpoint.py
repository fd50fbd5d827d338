"""offline/checkpoint.py: a checkpoint holding NaN or inf (a diverged run) is refused at load,
naming the file, the tensor, the element and the value, in theta0 and in Adam's state alike;
and every command that reads a checkpoint refuses it in one line, leaving the file as it was."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.cli import one_line_error, run_cli
from metaloihi.base.errors import UserError
from metaloihi.base.torch_file import theta0_key
from metaloihi.sim.float_lif import weight_key

W0 = theta0_key(weight_key(0))      # theta0's first weight in a checkpoint's meta


def _nan_checkpoint(path: Path, value=float("nan")) -> Path:
    from metaloihi.offline import checkpoint, config
    cfg = config.to_dict(config.load("demo"))
    w = torch.randn(16, 2, 5, 5)
    w[3, 1, 2, 4] = value
    checkpoint.save(path, {"meta": {W0: w}, "config": cfg,
                           "iteration": 3})
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_checkpoint_load_refuses_nan_and_inf(tmp_path, value):
    from metaloihi.offline import checkpoint
    path = _nan_checkpoint(tmp_path / "c.pt", value)
    with pytest.raises(UserError) as err:
        checkpoint.load(path)
    msg = str(err.value)
    assert "c.pt" in msg and W0 in msg and "[3, 1, 2, 4]" in msg
    assert str(value) in msg


def test_checkpoint_load_refuses_nan_in_adams_state(tmp_path):
    from metaloihi.offline import checkpoint, config
    cfg = config.to_dict(config.load("demo"))
    opt = {"state": {0: {"step": torch.tensor(3.0), "exp_avg_sq": torch.tensor([1.0, np.nan])}},
           "param_groups": []}
    checkpoint.save(tmp_path / "c.pt", {"meta": {"a": torch.zeros(2)}, "config": cfg,
                                        "optimizer": opt})
    with pytest.raises(UserError, match=r"optimizer state 0.exp_avg_sq\[1\] = nan is not a "
                                        r"finite number"):
        checkpoint.load(tmp_path / "c.pt")


@pytest.mark.parametrize("command", ["evaluate {ckpt} --tasks 2",
                                     "train --init {ckpt} --out {tmp}/run",
                                     "export --checkpoint {ckpt} --out {tmp}/b.h5"])
def test_every_consumer_refuses_a_nan_checkpoint(tmp_path, capsys, command):
    ckpt = _nan_checkpoint(tmp_path / "nan.pt")
    before = ckpt.read_bytes()
    code, out, err = run_cli(command.format(ckpt=ckpt, tmp=tmp_path), capsys)
    one_line_error(code, out, err, "nan.pt", W0, "nan")
    assert ckpt.read_bytes() == before
