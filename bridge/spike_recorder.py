"""A sink that records the spikes it receives into a .npy file (a memory map the host reads
once), for long recordings: Lava 0.10 sends a Monitor's data back one element per message,
which for a body's output over a whole session costs more than running it. Imported only
when Lava is used (bridge/netx_run.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloihi.base.lava_support import require_lava

require_lava("lava.magma.core.decorator")   # Lava's import wants the 'fork' start method: let it

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class SpikeRecorder(AbstractProcess):
    """Records s_in != 0 at every step into `path` ([steps, *shape] bool, made by `create`)."""

    def __init__(self, *, shape: tuple, path: str, **kwargs):
        super().__init__(shape=tuple(shape), path=str(path), **kwargs)
        self.s_in = InPort(shape=tuple(shape))


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.record = np.load(proc_params["path"], mmap_mode="r+")   # shared with the host

    def run_spk(self):
        s = self.s_in.recv()
        t = self.time_step - 1
        if t < len(self.record):
            self.record[t] = s != 0


def create(path: str | Path, steps: int, shape: tuple) -> Path:
    """The empty recording file a SpikeRecorder fills ([steps, *shape] bool, zeros)."""
    rec = np.lib.format.open_memmap(str(path), mode="w+", dtype=bool, shape=(steps, *shape))
    del rec
    return Path(path)


MODELS = {SpikeRecorder: PySpikeRecorderModel}
