"""The one place that imports Lava: lazily, quietly, and with one clear error when it is absent."""
from __future__ import annotations

import contextlib
import importlib
import io
import sys
import warnings

LAVA_HINT = (
    "Lava (lava-nc 0.10.0, lava-dl 0.6.0) is needed for this and runs on Python 3.10 only; "
    "you are on Python {ver}. Use the project's environment (`./run ...`, which creates a 3.10 "
    "venv), or `pip install 'metaloihi[lava]'` into a Python 3.10 environment."
)


class LavaUnavailable(ImportError):
    """Raised when a Lava-backed feature is used where Lava cannot be imported."""


def _quiet_import(name: str):
    # lava-dl prints CUDA / Prophesee / torchvision warnings on import: keep them off the terminal.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


def _let_lava_choose_fork() -> None:
    # Lava's runtime calls multiprocessing.set_start_method('fork') at import, which raises if
    # anything (numba's parallel layer, say) already fixed the start method. When that method is
    # already 'fork', clearing the choice changes nothing and lets Lava's import succeed.
    import multiprocessing as mp
    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    if mp.get_start_method(allow_none=True) == "fork":
        mp.context._default_context._actual_context = None


def require_lava(module: str = "lava.magma.core.run_configs"):
    """Import and return a Lava module, or raise LavaUnavailable with what to do."""
    try:
        _let_lava_choose_fork()
        return _quiet_import(module)
    except ImportError as err:
        ver = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise LavaUnavailable(LAVA_HINT.format(ver=ver) + f" (import of {module!r} failed: {err})") \
            from err
    except Exception as err:  # Lava 0.10 fails with a TypeError, not ImportError, on 3.11+
        ver = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise LavaUnavailable(LAVA_HINT.format(ver=ver) + f" (import of {module!r} failed: "
                              f"{type(err).__name__}: {err})") from err


def lava_available() -> bool:
    try:
        require_lava()
        return True
    except LavaUnavailable:
        return False


LOIHI_HW_HINT = (
    "--backend loihi2 runs on a Loihi 2 board through Loihi2HwCfg, which needs "
    "Intel's lava-loihi extension (Intel Neuromorphic Research Community members) and a board "
    "(SLURM or Ethernet host); lava-loihi is not usable here ({why}). Use --backend lava to run "
    "in Lava's CPU simulator (Loihi2SimCfg)."
)


def require_loihi2_hw():
    """Loihi2HwCfg, or a UserError (one line) where lava-loihi is absent: never a silent
    fallback to the CPU simulator."""
    from metaloihi.base.errors import UserError
    loihi = require_lava("lava.utils.loihi")
    if not loihi.is_installed():
        raise UserError(LOIHI_HW_HINT.format(why="no module lava.utils.loihi2_profiler"))
    try:
        _quiet_import("lava.magma.compiler.subcompilers.nc.ncproc_compiler")
    except Exception as err:  # noqa: BLE001 - any import failure means no Loihi compiler
        raise UserError(LOIHI_HW_HINT.format(why=f"{type(err).__name__}: {err}")) from None
    return require_lava("lava.magma.core.run_configs").Loihi2HwCfg
