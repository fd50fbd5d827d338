"""Data sets by name: the embedded ones (no files needed) and the real ones (a local folder)."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.datasets.names import EMBEDDED, OWN, REAL


def load_dataset(name: str, seed: int = 0, root: str | Path | None = None, **kwargs):
    """Load a data set by name -> FrameDataset / PairedFrameDataset.

    Embedded: digits, double_digits, gestures (generated once, then cached). Real: nmnist,
    double_nmnist, dvs_gesture, asl_dvs, double_asl_dvs, nomniglot (root = the folder holding
    the published files; nothing is ever downloaded). Own: events (root = one subfolder per
    class, datasets/events_folder.py)."""
    key = name.lower().replace("-", "_")
    if key in EMBEDDED:
        if root is not None:
            raise UserError(f"data set {name!r} is generated locally; it takes no folder "
                            "(no --root)")
        if key == "digits":
            from metaloihi.datasets.digits import digits_dataset
            return digits_dataset(seed=seed, **kwargs)
        if key == "double_digits":
            from metaloihi.datasets.digits import double_digits_dataset
            return double_digits_dataset(seed=seed, **kwargs)
        from metaloihi.datasets.gestures import gestures_dataset
        return gestures_dataset(seed=seed, **kwargs)
    if key in REAL:
        if root is None:
            raise UserError(f"data set {name!r} reads recordings from a local folder; give its "
                            "path (--root DIR; nothing is downloaded)")
        from metaloihi.datasets import paper_splits
        return getattr(paper_splits, key)(root, seed=seed, **kwargs)
    if key in OWN:
        if root is None:
            raise UserError(f"data set {name!r} reads your recordings from a local folder, one "
                            "subfolder per class; give its path (--root DIR)")
        from metaloihi.datasets.events_folder import events_dataset
        return events_dataset(root, seed=seed, **kwargs)
    raise UserError(f"unknown data set {name!r}; expected one of "
                    f"{', '.join(EMBEDDED + REAL + OWN)}")
