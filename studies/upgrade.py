"""The one-time upgrade of a checkpoint written by an older version: the description of its
network (offline/describe.py writes it at save time now; bridge/checkpoint_file.py reads it),
what made theta0 ("made_by"), and an old fit-soel's "soel_fit" folded into network.rule with
its record as "rule_fit" (rules/soel/legacy.py, the one home of old formats). A missing
description needs what export needed before: offline/'s config and model code, and the data set
once (for its frame shape); afterwards export needs neither."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.bridge.checkpoint_file import KEY, network_of
from metaloihi.offline import checkpoint, config, train
from metaloihi.offline.describe import made_by, network_description


def _current(state: dict) -> bool:
    return KEY in state and "made_by" in state and "soel_fit" not in state


def upgrade_checkpoint(path: str | Path, force: bool = False, dataset=None) -> bool:
    """Add the "network" description to the checkpoint at `path`, derived from its config, its
    data set's frame shape and its meta-parameters as export derived them before, and rewrite
    the file atomically (everything else in it kept as is). Idempotent: a checkpoint that
    already describes its network is checked and left untouched (returns False); force:
    re-derive the description anyway. dataset: the loaded data set (None: load the config's).
    Returns True when the file was rewritten."""
    path = Path(path)
    state = checkpoint.load(path)
    if _current(state) and not force:
        network_of(path, state)         # a damaged description is reported, not replaced
        return False
    if "made_by" not in state or force:  # what made theta0, from the file's own record
        state["made_by"] = made_by(state["config"], state.get("iteration")
                                   if state.get("stage") != 1 else None, state.get("init_from"))
    if KEY in state and not force:
        _fold_fit(path, state)
        network_of(path, state)
        checkpoint.save(path, state)
        return True
    try:
        cfg = config.from_dict(state["config"])
    except UserError as err:
        raise UserError(f"checkpoint {str(path)!r}: its config: {err}") from None
    s = train.setup(cfg, dataset, device="cpu")
    state[KEY] = network_description(cfg, s.dataset.frame_shape, s.specs, s.neurons,
                                     state["meta"])
    _fold_fit(path, state)
    network_of(path, state)             # what export will read
    checkpoint.save(path, state)
    return True


def _fold_fit(path: Path, state: dict) -> None:
    """An old fit-soel's "soel_fit" into network.rule, recorded as "rule_fit" (the change
    bridge/checkpoint_file.py makes when it reads a file that still holds one); a description
    re-derived (force) gets its recorded fit back."""
    if state.get("soel_fit") is not None:
        state["rule_fit"] = network_of(path, state).meta["rule_fit"]   # checked, folded
    state.pop("soel_fit", None)
    fit = state.get("rule_fit")
    if isinstance(fit, dict):
        state[KEY] = {**state[KEY], "rule": {**state[KEY]["rule"], **{
            k: fit[k] for k in ("theta", "eta", "target_on", "passes") if k in fit}}}
