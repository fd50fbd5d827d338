"""Event core, DVS emulator and frame cache: behaviour proved with numbers."""
import hashlib

import numpy as np
import pytest

from metaloihi.datasets import store
from metaloihi.datasets.dvs import DVSConfig, emulate, emulate_frames
from metaloihi.datasets.events import (EVENT_DTYPE, FrameSpec, denoise, downsample, make_events,
                                       pack_frames, pool_frames, to_frames, unpack_frames)
from metaloihi.base.errors import UserError


def test_to_frames_bins_events_by_time_polarity_and_pixel():
    ev = make_events(x=[1, 2, 3, 3], y=[0, 1, 2, 2], p=[1, 0, 1, 1], t=[500, 1500, 99_999, 99_000])
    f = to_frames(ev, (4, 3), FrameSpec(100, 1000))
    assert f.shape == (100, 2, 3, 4) and f.dtype == np.uint8
    assert f[0, 1, 0, 1] == 1 and f[1, 0, 1, 2] == 1 and f[99, 1, 2, 3] == 2
    assert f.sum() == 4
    assert to_frames(ev, (4, 3), FrameSpec(100, 1000), binary=True)[99, 1, 2, 3] == 1


def test_to_frames_drops_events_outside_window_and_handles_none():
    ev = make_events(x=[0, 0], y=[0, 0], p=[1, 1], t=[-1, 10_000])
    assert to_frames(ev, (2, 2), FrameSpec(10, 1000)).sum() == 0
    assert to_frames(np.zeros(0, EVENT_DTYPE), (2, 2), FrameSpec(5, 1000)).shape == (5, 2, 2, 2)


def test_downsample_and_pool_agree_on_counts():
    rng = np.random.default_rng(0)
    n = 2000
    ev = make_events(rng.integers(0, 8, n), rng.integers(0, 8, n), rng.random(n) < .5,
                     rng.integers(0, 10_000, n))
    small, size = downsample(ev, (8, 8), 2)
    assert size == (4, 4)
    direct = to_frames(small, size, FrameSpec(10, 1000)).astype(int)
    pooled = pool_frames(to_frames(ev, (8, 8), FrameSpec(10, 1000)), 2).astype(int)
    np.testing.assert_array_equal(direct, pooled)
    assert direct.sum() == n


def test_denoise_drops_an_isolated_event_keeps_a_neighbour_pair():
    ev = make_events(x=[10, 11, 30], y=[10, 10, 30], p=[1, 1, 1], t=[1000, 1100, 50_000])
    kept = denoise(ev, filter_time_us=5000)
    assert sorted(kept["x"].tolist()) == [10, 11]


def test_pack_roundtrip_is_exact():
    f = (np.random.default_rng(1).random((3, 5, 2, 7, 34)) < .3).astype(np.uint8)
    packed = pack_frames(f)
    assert packed.shape[-1] == 5
    np.testing.assert_array_equal(unpack_frames(packed, 34), f)


def test_emulator_static_scene_gives_only_noise_at_the_configured_rate():
    video = np.full((101, 32, 32), 0.5, np.float32)
    ev = emulate(video, 1000, DVSConfig(noise_hz=20.0), seed=3)
    expected = 20.0 * 32 * 32 * 0.1  # 2048 noise events in 100 ms
    assert abs(len(ev) - expected) < 5 * np.sqrt(expected)
    assert emulate(video, 1000, DVSConfig(noise_hz=0.0)).size == 0


def test_emulator_brightening_ramp_gives_on_events_matching_log_contrast():
    # intensity x e^1 over 100 ms: log change 1.0, threshold 0.25 -> 4 ON events per pixel
    video = np.exp(np.linspace(0, 1, 101))[:, None, None] * np.ones((1, 8, 8)) - 0.0
    cfg = DVSConfig(mismatch=0.0, noise_hz=0.0, eps=0.0, refractory_us=0.0)
    ev = emulate(video, 1000, cfg, seed=0)
    assert ev["p"].all()
    per_pixel = np.bincount(ev["y"] * 8 + ev["x"], minlength=64)
    assert per_pixel.min() >= 3 and per_pixel.max() <= 5 and abs(per_pixel.mean() - 4) < 0.6
    dark = emulate(video[::-1].copy(), 1000, cfg, seed=0)
    assert (~dark["p"]).all() and abs(len(dark) - len(ev)) <= 64


def test_emulator_refractory_period_limits_the_event_rate():
    video = np.exp(np.linspace(0, 10, 101))[:, None, None] * np.ones((1, 4, 4))
    cfg = DVSConfig(mismatch=0.0, noise_hz=0.0, eps=0.0, refractory_us=0.0)
    free = emulate(video, 1000, cfg)
    slow = emulate(video, 1000, DVSConfig(mismatch=0.0, noise_hz=0.0, eps=0.0,
                                          refractory_us=5000.0))
    assert abs(len(free) / 16 - 40) <= 1  # log change 10 / threshold 0.25
    assert len(slow) <= 16 * 21  # at most one event per 5 ms per pixel
    t = np.sort(slow[(slow["x"] == 0) & (slow["y"] == 0)]["t"])
    assert np.diff(t).min() >= 5000 - 1


def test_emulator_is_deterministic_and_batch_independent():
    rng = np.random.default_rng(0)
    videos = rng.random((3, 21, 8, 8)).astype(np.float32)
    a = emulate_frames(videos, 1000, FrameSpec(20, 1000), seeds=[5, 6, 7])
    b = emulate_frames(videos[1:2], 1000, FrameSpec(20, 1000), seeds=[6])
    np.testing.assert_array_equal(a[1], b[0])
    assert a.sum(axis=(1, 2, 3, 4)).tolist() == [951, 1000, 949]   # events per video, seeded


def test_store_writes_identical_bytes_atomically_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "c"))
    arrays = {"frames": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "labels": np.arange(2)}
    p1 = store.save_arrays(store.cache_dir() / "a.mlf", arrays, {"width": 4})
    p2 = store.save_arrays(store.cache_dir() / "b.mlf", arrays, {"width": 4})
    assert store.cache_dir() == tmp_path / "c"
    assert hashlib.sha256(p1.read_bytes()).digest() == hashlib.sha256(p2.read_bytes()).digest()
    back, meta = store.load_arrays(p1)
    np.testing.assert_array_equal(back["frames"], arrays["frames"])
    assert meta == {"width": 4}
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_store_rejects_truncated_file_and_cached_rebuilds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"x": np.ones(1000, np.uint8)}, {}
    store.cached("t", {"v": 1}, build)
    path = next(tmp_path.glob("t-*.mlf"))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UserError, match="truncated"):
        store.load_arrays(path)
    arrays, _ = store.cached("t", {"v": 1}, build)
    assert len(calls) == 2 and arrays["x"].sum() == 1000
    store.cached("t", {"v": 1}, build)
    assert len(calls) == 2  # third call hits the repaired cache
