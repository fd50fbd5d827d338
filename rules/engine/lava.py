"""Every rule's Lava side: the head neuron that turns the third factor into y traces, the error
path (the window gate, the head's spike counts, the rule's third factor), the Loihi3F learning
rule of a session rule's dw string, and the head's part of the on-chip graph (`head_classes`,
`wire`). Imported only when Lava is used (onchip/graph.py, through a rule's card and its
lava.py); rules/engine/chip.py is the same, bit-exact, without Lava.

Why our own head neuron model: Lava 0.10's PyLearningLIFModelFixed never reads
a_third_factor_in nor sends y traces (its run_spk is the plain LIF's), and a 2-factor rule
ignores graded post values (lava-nc/lava#909: _process_post_spikes adds only the impulse). With
a Loihi3FLearningRule the learning Dense overwrites y1..y3 every step with what the neuron sends,
so a graded third factor reaches the rule unchanged: we send y2 = clip(n, 0, 127) and
y3 = clip(-n, 0, 127) (traces are 7-bit unsigned, hence the split by sign).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaloihi.base.lava_support import require_lava

require_lava("lava.magma.core.decorator")   # Lava's import wants the 'fork' start method: let it

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed  # noqa: E402
from lava.proc.lif.process import LearningLIF  # noqa: E402

from metaloihi.rules.engine.chip import TRACE_MAX, TRACE_TAU


class HeadLIF(LearningLIF):
    """The head's LIF population (LearningLIF's ports and vars); its model is ours."""


@implements(proc=HeadLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHeadLIFModelFixed(LearningNeuronModelFixed, AbstractPyLifModelFixed):
    """Loihi's fixed-point LIF update (AbstractPyLifModelFixed, as PyLifModelBitAcc), plus: the
    third factor n from a_third_factor_in -> y2, y3; the spikes as back-propagating action
    potentials (bAP). The 3F rule's y traces are what we send each step."""

    # int32 like every Lava message (LIF's default int16 would wrap large head sums at 16 bits)
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        return self.v > self.effective_vth

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        n = self.a_third_factor_in.recv().astype(np.int32)
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in)
        spikes = self.spiking_activation()
        self.reset_voltage(spike_vector=spikes)
        self.y1 = np.zeros_like(n)
        self.y2 = np.clip(n, 0, TRACE_MAX).astype(np.int32)
        self.y3 = np.clip(-n, 0, TRACE_MAX).astype(np.int32)
        self.s_out.send(spikes)
        self.s_out_bap.send(spikes)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)


class ErrorPath(AbstractProcess):
    """The error path on a CPU core (SOEL used Loihi's x86 cores): a window gate on the head's
    input and the post-count -> third-factor computation (the session rule's third_factor).

    Each sample has a period of window + 1 steps. In the window the head's input spikes pass
    (s_in -> s_out, same step) and the head's spikes (post_in) are counted; at the period's
    last step (the learning step) the input is blocked and n = rule.third_factor(c, label)
    (SOEL: trunc((c - target) / theta)) goes out on n_out (computed at the window's last
    step, sent one step later: sending it in the same step would close a neuron -> error ->
    neuron cycle). labels[k] is the label of the k-th sample (-1: no learning, n = 0)."""

    def __init__(self, *, n_in: int, n_out: int, rule, labels: np.ndarray, **kwargs):
        super().__init__(rule=rule, **kwargs)
        labels = np.asarray(labels, np.int64)
        self.s_in = InPort(shape=(n_in,))
        self.s_out = OutPort(shape=(n_in,))
        self.post_in = InPort(shape=(n_out,))
        self.n_out = OutPort(shape=(n_out,))
        self.labels = Var(shape=labels.shape, init=labels)
        self.counts = Var(shape=(n_out,), init=0)
        self.last = Var(shape=(n_out,), init=0)      # the last finished window's counts
        self.n_buf = Var(shape=(n_out,), init=0)


@implements(proc=ErrorPath, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyErrorPathModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    post_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    n_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    labels: np.ndarray = LavaPyType(np.ndarray, np.int32)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32)
    last: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_buf: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.rule = proc_params["rule"]

    def run_spk(self):
        self.n_out.send(self.n_buf)                  # last step's value first: no cycle
        k, phase = divmod(self.time_step - 1, self.rule.period)
        window = phase < self.rule.window
        s = self.s_in.recv()
        self.s_out.send(s if window else np.zeros_like(s))
        post = self.post_in.recv()
        if window:
            self.counts = self.counts + (post != 0)
        if phase == self.rule.window - 1:            # window's end: n goes out next step
            label = int(self.labels[k]) if k < len(self.labels) else -1
            self.n_buf = self.rule.third_factor(self.counts, label).astype(np.int32)
            self.last = self.counts.copy()
        else:
            self.n_buf = np.zeros_like(self.n_buf)
        if not window:
            self.counts = np.zeros_like(self.counts)


# --- the rule's part of the on-chip graph (onchip/graph.py builds the rest) ----------------------
def learning_rule(rule):
    """Lava's Loihi3FLearningRule for the session rule: dw as mant 2^exp times the y traces."""
    lr = require_lava("lava.magma.core.learning.learning_rule")
    return lr.Loihi3FLearningRule(dw=rule.dw_string(), x1_impulse=1, x1_tau=TRACE_TAU,
                                  t_epoch=rule.period, rng_seed=rule.rng_seed)


@dataclass
class HeadGraph:
    """The learning head as this rule wires it: frozen spikes -> error path -> LearningDense
    -> head LIF -> error path (counts) -> n -> the LIF's third factor -> y traces."""
    dense: object
    lif: object
    error_path: object
    models: dict                 # our processes -> their models (exception_proc_model_map)
    rest: list                   # state put back at rest between samples, besides u, v, a_buff

    def third_factor(self, counts: np.ndarray, label: int, rule) -> np.ndarray:
        """What the error path sent after a sample with these output counts (the live view)."""
        return rule.third_factor(counts, label)

    def last_counts(self) -> np.ndarray:
        """The head's spike counts over the last finished window (read while paused)."""
        return np.asarray(self.error_path.last.get()).astype(np.int64)


def head_classes(rule) -> tuple:
    """(Dense class, LIF class, Dense kwargs, LIF kwargs) of the learning head, for
    bridge.netx_run.head_processes (which builds every head, learning or not)."""
    LearningDense = require_lava("lava.proc.dense.process").LearningDense
    SignMode = require_lava("lava.utils.weightutils").SignMode
    rule_lava = learning_rule(rule)
    return (LearningDense, HeadLIF, {"sign_mode": SignMode.MIXED, "learning_rule": rule_lava},
            {"learning_rule": rule_lava})


def wire(dense, lif, rule, labels: np.ndarray, frozen_out, n_in: int, n_out: int
         ) -> HeadGraph:
    """Connect the head (head_classes' processes, built) to the frozen spikes through the
    error path, and the third factor back to the rule."""
    err = ErrorPath(n_in=n_in, n_out=n_out, rule=rule, labels=labels)
    frozen_out.connect(err.s_in)
    err.s_out.connect(dense.s_in)
    lif.s_out.connect(err.post_in)
    err.n_out.connect(lif.a_third_factor_in)
    lif.s_out_bap.connect(dense.s_in_bap)
    lif.s_out_y1.connect(dense.s_in_y1)
    lif.s_out_y2.connect(dense.s_in_y2)
    lif.s_out_y3.connect(dense.s_in_y3)
    return HeadGraph(dense, lif, err, {HeadLIF: PyHeadLIFModelFixed, ErrorPath: PyErrorPathModel},
                     [dense.x1])
