"""bridge/validate.py as a property: whatever `bundle validate` passes, every consumer of a bundle
runs (the reader, the encoder, an on-chip session in sim/). Each field of a valid bundle is
mutated several ways; validate refuses the result in one line or the consumers run. (Single
refusals with their messages: tests/bad_inputs/; the checker's bounds: test_base_bounds.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError


def _fields(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Every dataset and every (group, attribute) of a bundle."""
    import h5py
    datasets, attrs = [], []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)
            attrs.extend((name, k) for k in obj.attrs)
        f.visititems(visit)
        attrs.extend(("/", k) for k in f.attrs)
    return datasets, attrs


BIG_U64 = np.uint64(2 ** 64 - 2)


def _mutations(value):
    """Values a damaged or hand-edited bundle may hold in place of `value` (None: deleted)."""
    shape = np.shape(value)
    yield "a string", "abc"
    yield "uint64 2**64-2", np.full(shape, BIG_U64)
    yield "-1", np.full(shape, -1, np.int64)
    yield "0.5", np.full(shape, 0.5)
    yield "nan", np.full(shape, np.nan)
    yield "2**40", np.full(shape, 2 ** 40, np.int64)
    yield "two numbers", np.array([1, 2])
    yield "deleted", None


def _consumers(path: Path) -> None:
    """What reads a bundle: the reader, the encoder, and an on-chip session in sim/."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.onchip.session import adapt
    b = read_bundle(path)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 2, (3, 6, 2, 8, 8)).astype(np.uint8)
    x = b.encode(frames)
    ways = b.net[-1].spec.out_features
    adapt(path, x[:ways], np.arange(ways), x[:ways], np.arange(ways), backend="sim")


def test_a_bundle_validate_passes_never_crashes_a_consumer(valid_bundle, tmp_path):
    """Mutate each field of a good bundle: validate refuses it (one-line UserError) or every
    consumer runs (a UserError of theirs is fine too; an internal error is not)."""
    import h5py
    from metaloihi.bridge.validate import validate_bundle
    datasets, attrs = _fields(valid_bundle)
    assert len(datasets) >= 15 and len(attrs) >= 15
    crashes, tried = [], 0
    path = tmp_path / "m.h5"
    for kind, names in (("dataset", datasets), ("attr", attrs)):
        for name in names:
            with h5py.File(valid_bundle, "r") as f:
                old = f[name][()] if kind == "dataset" else f[name[0]].attrs[name[1]]
            for label, new in _mutations(old):
                path.write_bytes(valid_bundle.read_bytes())
                with h5py.File(path, "r+") as f:
                    if kind == "dataset":
                        del f[name]
                        if new is not None:
                            f.create_dataset(name, data=new)
                    elif new is None:
                        del f[name[0]].attrs[name[1]]
                    else:
                        f[name[0]].attrs[name[1]] = new
                tried += 1
                try:
                    validate_bundle(path)
                except UserError as err:
                    assert "\n" not in str(err)
                    continue
                except Exception as err:  # noqa: BLE001 - validate itself must not crash
                    crashes.append(f"validate: {kind} {name} = {label}: "
                                   f"{type(err).__name__}: {err}")
                    continue
                try:
                    _consumers(path)
                except UserError:
                    pass
                except Exception as err:  # noqa: BLE001 - what the test looks for
                    crashes.append(f"{kind} {name} = {label}: {type(err).__name__}: {err}")
    assert tried >= 250
    assert not crashes, "\n".join(crashes)
