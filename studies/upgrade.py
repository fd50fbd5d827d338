"""The one-time upgrade of a checkpoint written before checkpoints described their network
(offline/describe.py writes the description at save time; bridge/checkpoint_file.py reads it).
The upgrade needs what export needed before: offline/'s config and model code, and the data set
once (for its frame shape); afterwards export needs neither."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.bridge.checkpoint_file import KEY, network_of
from metaloihi.offline import checkpoint, config, train
from metaloihi.offline.describe import made_by, network_description


def upgrade_checkpoint(path: str | Path, force: bool = False, dataset=None) -> bool:
    """Add the "network" description to the checkpoint at `path`, derived from its config, its
    data set's frame shape and its meta-parameters as export derived them before, and rewrite
    the file atomically (everything else in it kept as is). Idempotent: a checkpoint that
    already describes its network is checked and left untouched (returns False); force:
    re-derive the description anyway. dataset: the loaded data set (None: load the config's).
    Returns True when the file was rewritten."""
    path = Path(path)
    state = checkpoint.load(path)
    if KEY in state and "made_by" in state and not force:
        network_of(path, state)         # a damaged description is reported, not replaced
        return False
    if "made_by" not in state or force:  # what made theta0, from the file's own record
        state["made_by"] = made_by(state["config"], state.get("iteration")
                                   if state.get("stage") != 1 else None, state.get("init_from"))
    if KEY in state and not force:
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
    network_of(path, state)             # what export will read
    checkpoint.save(path, state)
    return True
