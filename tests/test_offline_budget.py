"""offline/budget.py: a meta-batch that cannot fit in memory is refused before any work, with
the estimate and what it counts."""
import os

import pytest

from metaloihi.base.errors import UserError


def test_meta_batch_memory_estimate(train_toml, monkeypatch):
    from metaloihi.offline import budget, config
    cfg = config.load(str(train_toml))                 # 2 tasks x 5 ways x (1 shot + 1 query)
    need, how = budget.meta_batch_bytes(cfg, (100, 2, 32, 32))
    # frames 100x2x32x32 bytes + input 20 steps (time_pool 5) x 2x8x8 (pool 4) float32
    assert need == 2 * 10 * (100 * 2 * 32 * 32 + 20 * 2 * 8 * 8 * 4)
    assert how == "2 tasks x 10 samples of 100x2x32x32 frames and 20x2x8x8 float32 input"
    budget.check_meta_batch(cfg, (100, 2, 32, 32), available=need)
    with pytest.raises(UserError, match=r"train.meta_batch=2 cannot fit in memory: .* about "
                                        r"0.0 GiB .* and 0.0 GiB are available"):
        budget.check_meta_batch(cfg, (100, 2, 32, 32), available=need - 1)
    # what is available: at most the machine's RAM; under a 1 MiB `ulimit -v`, nothing left
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < budget.available_bytes() <= total
    monkeypatch.setattr(budget.resource, "getrlimit",
                        lambda what: (2 ** 20, budget.resource.RLIM_INFINITY))
    assert budget.available_bytes() == 0
