"""Embedded data sets (small configurations), task sampling and the PNG grid."""
import hashlib

import numpy as np
import pytest
import torch

from metaloihi.datasets.digits import DigitsConfig, digits_dataset, double_digits_dataset
from metaloihi.datasets.gesture_catalog import (DEMO_GESTURES, GESTURE_NAMES, TRAIN_GESTURES,
                                                VAL_GESTURES, gesture_splits)
from metaloihi.datasets.gestures import GesturesConfig, gestures_dataset
from metaloihi.datasets.registry import load_dataset
from metaloihi.datasets.show import show_dataset
from metaloihi.datasets.tasks import TaskSampler, sample_task
from metaloihi.base.errors import UserError

SMALL_DIGITS = DigitsConfig(per_class=6)
SMALL_GESTURES = GesturesConfig(per_class=6, classes=tuple(DEMO_GESTURES + TRAIN_GESTURES[:5]))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "cache"))


def _hash_cache(tmp_path, prefix):
    files = sorted((tmp_path / "cache").glob(prefix + "-*.mlf"))
    assert len(files) == 1
    return files[0].name, hashlib.sha256(files[0].read_bytes()).hexdigest()


def test_digits_shape_labels_and_event_counts():
    ds = digits_dataset(config=SMALL_DIGITS)
    assert len(ds) == 60 and ds.frame_shape == (100, 2, 34, 34)
    assert np.bincount(ds.labels).tolist() == [6] * 10
    f = ds.frames([0, 1])
    assert f.dtype == np.uint8 and f.max() == 1
    per_sample = f.sum(axis=(1, 2, 3, 4))
    assert (per_sample > 1000).all() and (per_sample < 20000).all()  # N-MNIST: ~4000 / 300 ms
    on, off = f[:, :, 1].sum(), f[:, :, 0].sum()
    assert 0.5 < on / off < 2  # a moving bright digit makes both polarities


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, monkeypatch):
    digits_dataset(seed=0, config=SMALL_DIGITS)
    name0, h0 = _hash_cache(tmp_path, "digits")
    (tmp_path / "cache" / name0).unlink()
    digits_dataset(seed=0, config=SMALL_DIGITS)
    assert _hash_cache(tmp_path, "digits") == (name0, h0)
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "other"))
    a = digits_dataset(seed=1, config=SMALL_DIGITS, use_cache=False).data
    b = digits_dataset(seed=0, config=SMALL_DIGITS, use_cache=False).data
    assert not np.array_equal(a, b)


def test_double_digits_split_64_16_20_with_disjoint_source_images():
    ds = double_digits_dataset(config=SMALL_DIGITS, per_class=5)
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 64, "val": 16, "test": 20}
    all_classes = np.concatenate(list(ds.splits.values()))
    assert sorted(all_classes.tolist()) == list(range(100))
    assert ds.frame_shape == (100, 2, 16, 32) and ds.frames([0]).shape == (1, 100, 2, 16, 32)
    src = {k: set(ds.pairs[np.isin(ds.labels, v)].ravel().tolist()) for k, v in ds.splits.items()}
    assert not (src["test"] & src["train"]) and not (src["test"] & src["val"])
    assert not (src["train"] & src["val"])
    # class "ab" shows digit a on the left and b on the right
    i = int(np.flatnonzero(ds.labels == 37)[0]) if 37 in ds.labels else 0
    a, b = divmod(int(ds.labels[i]), 10)
    assert ds.base.labels[ds.pairs[i, 0]] == a and ds.base.labels[ds.pairs[i, 1]] == b


def test_gesture_catalog_has_40_classes_and_disjoint_splits_with_demo_held_out():
    assert len(GESTURE_NAMES) == 40 and len(set(GESTURE_NAMES)) == 40
    s = gesture_splits()
    assert [len(s[k]) for k in ("train", "val", "test", "demo")] == [24, 6, 10, 5]
    assert not set(s["train"]) & set(s["val"]) and not set(s["train"]) & set(s["test"])
    assert not set(s["val"]) & set(s["test"])
    assert set(s["demo"]) <= set(s["test"]) and not set(VAL_GESTURES) & set(DEMO_GESTURES)


def test_gestures_small_set_shapes_variation_and_determinism(tmp_path):
    ds = gestures_dataset(config=SMALL_GESTURES)
    assert len(ds) == 60 and ds.frame_shape == (100, 2, 32, 32)
    f = ds.frames(np.arange(len(ds))).astype(np.float32)
    counts = f.sum(axis=(1, 2, 3, 4))
    assert counts.min() > 100 and counts.max() < 20000
    # samples of one class differ (actor, speed, noise), yet resemble each other more than
    # samples of other classes do: nearest-centroid on summed images beats chance (10 classes)
    img = f.sum(axis=1).reshape(len(ds), -1)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    train = np.arange(len(ds)) % 6 < 3
    cls = np.unique(ds.labels)
    cent = np.stack([img[train & (ds.labels == c)].mean(0) for c in cls])
    pred = cls[np.argmax(img[~train] @ cent.T, axis=1)]
    # 12 of the 30 held-out samples (chance: 3); the runner-up is >= 0.004 behind on each
    assert (pred == ds.labels[~train]).sum() == 12
    assert not np.array_equal(f[0], f[1])
    again = gestures_dataset(config=SMALL_GESTURES, use_cache=False)
    np.testing.assert_array_equal(again.data, ds.data)
    assert set(ds.splits["demo"]) == {GESTURE_NAMES.index(n) for n in DEMO_GESTURES}


def test_task_sampler_shapes_labels_permutation_and_seed():
    ds = gestures_dataset(config=SMALL_GESTURES)
    task = sample_task(ds, "demo", ways=5, shots=1, queries=2, rng=np.random.default_rng(0))
    assert task.support_x.shape == (5, 100, 2, 32, 32) and task.support_x.dtype == torch.float32
    assert task.query_x.shape == (10, 100, 2, 32, 32)
    assert task.support_y.tolist() == [0, 1, 2, 3, 4] and task.query_y.tolist() == [0, 1, 2, 3, 4] * 2
    assert sorted(task.classes.tolist()) == sorted(ds.splits["demo"].tolist())
    orders = {tuple(TaskSampler(ds, "demo", 5, 1, 1, seed=s).sample().classes) for s in range(8)}
    assert len(orders) > 1  # label i means a different class from task to task
    a, b = TaskSampler(ds, "demo", 5, 2, 1, seed=4), TaskSampler(ds, "demo", 5, 2, 1, seed=4)
    ta, tb = a.sample(), b.sample()
    assert torch.equal(ta.support_x, tb.support_x) and torch.equal(ta.query_y, tb.query_y)
    # support and queries are distinct samples of the task's class
    for lab, c in enumerate(ta.classes):
        assert ta.support_x[ta.support_y == lab].shape[0] == 2
    with pytest.raises(UserError, match="ways=6"):
        sample_task(ds, "demo", 6, 1, 1, np.random.default_rng(0))
    with pytest.raises(UserError, match="no split"):
        TaskSampler(ds, "nope")
    with pytest.raises(UserError, match="has 6 samples"):
        sample_task(ds, "demo", 5, 5, 2, np.random.default_rng(0))


def test_double_digit_tasks_come_from_the_requested_split():
    ds = double_digits_dataset(config=SMALL_DIGITS, per_class=5)
    t = TaskSampler(ds, "test", ways=5, shots=1, queries=3, seed=1).sample()
    assert set(t.classes.tolist()) <= set(ds.splits["test"].tolist())
    assert t.support_x.shape == (5, 100, 2, 16, 32) and t.support_x.max() <= 4


def test_show_writes_a_png_grid(tmp_path):
    ds = gestures_dataset(config=SMALL_GESTURES)
    out = show_dataset("gestures", tmp_path / "g.png", per_class=3, n_classes=4, dataset=ds)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(UserError, match="unknown data set"):
        load_dataset("mnist-rgb")
    with pytest.raises(UserError, match="local folder"):
        load_dataset("nmnist")
