"""Stage 1's augmentations and lr decay (offline/pretrain.py)."""
import numpy as np
import pytest
import torch

from metaloihi.base.errors import UserError
from metaloihi.offline import pretrain


def test_time_jitter_moves_each_sample_and_empties_what_it_vacates():
    x = torch.zeros(3, 6, 1, 2, 2)
    x[:, 2, 0, 0, 0] = 1                          # one spike at step 2 in every sample
    rng = np.random.default_rng(0)
    offs = np.random.default_rng(0).integers(0, 5, 3) - 2   # the draws time_jitter makes
    y = pretrain.time_jitter(x, 2, rng)
    assert y.shape == x.shape and float(y.sum()) == 3
    for b, d in enumerate(offs):
        assert float(y[b, 2 - d, 0, 0, 0]) == 1   # moved by -d: padded by 2, window at d + 2
    assert pretrain.time_jitter(x, 0, rng) is x


def test_drop_events_removes_the_given_fraction():
    x = torch.ones(8, 50, 2, 16, 16)
    y = pretrain.drop_events(x, 0.1, np.random.default_rng(1))
    assert set(torch.unique(y).tolist()) == {0.0, 1.0}
    assert float(1 - y.mean()) == pytest.approx(0.1, abs=0.003)   # 204800 draws: sd 0.0007
    assert pretrain.drop_events(x, 0.0, np.random.default_rng(1)) is x


def test_cosine_decay_from_lr_to_zero():
    f = [pretrain.lr_factor(it, 4, "cosine") for it in range(1, 5)]
    assert f == pytest.approx([1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5, 0.5 * (1 + np.cos(3 * np.pi / 4))])
    assert pretrain.lr_factor(3, 4, "constant") == 1.0


def test_unknown_decay_refused_with_its_name():
    with pytest.raises(UserError, match="pretrain.lr_decay = 'linear'"):
        pretrain.PretrainConfig(lr_decay="linear")
    with pytest.raises(UserError, match="pretrain.drop"):
        pretrain.PretrainConfig(drop=1.0)


def test_the_decay_survives_a_config_round_trip():
    """A checkpoint's config is read back through offline/config.py, where "none" means null."""
    from metaloihi.offline import config
    for decay in ("constant", "cosine"):
        cfg = config.load("demo", {"pretrain.lr_decay": decay})
        again = config.from_dict(config.to_dict(cfg))
        assert again.pretrain.lr_decay == decay
