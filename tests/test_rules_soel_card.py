"""rules/soel/__init__.py, the rule's card: a rule learnt in float units becomes the chip's rule
once (to_chip), and a float rule the learning engine cannot approximate is refused there,
naming the value and the chip's range. (The card's bounds, field by field: test_base_bounds.py.)"""
import pytest

from metaloihi.base.errors import UserError
from metaloihi.rules.soel import LearntRule, to_chip


@pytest.mark.parametrize("eta,theta,fragments", [
    (1e300, 1.0, ("SOEL eta 1e+300 x scale 2 = 2e+300", "16x outside the chip's steps")),
    (1e-300, 1.0, ("SOEL eta 1e-300", "[0.000976562, 224]")),
    (0.1, 1e-300, ("SOEL theta = 1e-300", "[0.0078125, ")),
])
def test_a_float_rule_the_chip_cannot_approximate_is_refused_at_export(eta, theta, fragments):
    with pytest.raises(UserError) as err:
        to_chip(LearntRule(theta=theta, eta=eta), scale=2.0)
    assert all(f in str(err.value) for f in fragments), str(err.value)
