"""Where a bundle runs: one choice, used by `deploy`, `adapt` and the demo.

  sim     sim/ (the bit-exact integer model of Lava's fixed_pt simulator; no Lava needed)
  lava    Lava's CPU simulator, Loihi2SimCfg with the fixed_pt models
  loihi2  a Loihi 2 board, Loihi2HwCfg: needs Intel's lava-loihi extension and a board; without
          them it is a UserError, never a fallback to the simulator
"""
from __future__ import annotations

from contextlib import contextmanager

from metaloihi.base.errors import UserError
from metaloihi.base.lava_support import require_lava, require_loihi2_hw

TARGETS = ("sim", "lava", "loihi2")
NAMES = {"sim": "sim/ (bit-exact model)", "lava": "Loihi2SimCfg (fixed_pt)",
         "loihi2": "Loihi2HwCfg"}


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise UserError(f"backend {target!r}; expected one of {', '.join(TARGETS)}")
    return target


def run_config(target: str, models: dict | None = None):
    """The Lava run configuration of a Lava target; `models` maps our processes to their
    models (exception_proc_model_map)."""
    if check_target(target) == "sim":
        raise UserError("backend 'sim' runs without Lava: it has no Lava run configuration")
    if target == "loihi2":
        return require_loihi2_hw()(exception_proc_model_map=models or {})
    return require_lava("lava.magma.core.run_configs").Loihi2SimCfg(
        select_tag="fixed_pt", exception_proc_model_map=models or {})


@contextmanager
def board_errors(target: str):
    """On a board, a failing run is the setup's: one line naming it, not Lava's traceback."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - on a board, failures are the setup's
        if target != "loihi2" or isinstance(err, UserError):
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"backend loihi2: the Loihi 2 run failed ({type(err).__name__}: "
                        f"{first})") from None
