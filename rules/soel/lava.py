"""SOEL in Lava: every rule's head neuron, error path and graph part (rules/engine/lava.py; the
error path sends SOEL's n = trunc((c - target) / theta), its session rule's third_factor, and
the head neuron splits it into y2 = clip(n, 0, 127), y3 = clip(-n, 0, 127)) with SOEL's dw
string mant 2^exp (u0 x1 y3 - u0 x1 y2). Imported only when Lava is used (onchip/graph.py,
through the rule's card: lava_module())."""
from __future__ import annotations

from metaloihi.rules.engine.lava import (HeadGraph, head_classes, learning_rule,  # noqa: F401
                                         wire)
