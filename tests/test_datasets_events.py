"""The generic data set `events` (datasets/events_folder.py): a folder of your own recordings,
one subfolder per class, in every format the readers know. Its frames are the ones each format's
reader gives (N-MNIST: the nmnist data set's own frames), its class split follows the stated
rule, its settings file is the one `metaloihi data events` writes, and fit-soel, adapt, cost and
continual run on it end to end. (Its bad inputs: tests/bad_inputs/.)"""
import math
from pathlib import Path

import numpy as np
import pytest

from helpers import event_files as ef
from helpers.cli import run_cli
from metaloihi.base.errors import UserError
from metaloihi.datasets import load_dataset, paper_splits
from metaloihi.datasets.aedat import read_aedat2, read_aedat4, read_aedat31
from metaloihi.datasets.events import FrameSpec, as_events, to_frames
from metaloihi.datasets.events_folder import events_dataset
from metaloihi.datasets.events_settings import (EventsSettings, class_splits, read_settings,
                                                split_sizes)
from metaloihi.datasets.readers import read_nmnist_bin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "cache"))


# --- frames: what each format's reader gives -------------------------------------------------
def test_nmnist_class_folders_as_events_give_the_nmnist_data_sets_frames(tmp_path):
    """N-MNIST's Train/ as an `events` folder (classes '0'..'9'), 300 ms from each file's
    t = 0 in 100 bins: the very frames the nmnist data set makes of the same files."""
    rng = np.random.default_rng(0)
    for part, n in (("Train", 2), ("Test", 1)):
        for d in range(10):
            for i in range(n):
                ef.write_nmnist_bin(tmp_path / "nm" / part / str(d) / f"{i:05d}.bin",
                                    ef.events(rng, 300, 34, 34, 300_000))
    nm = paper_splits.nmnist(tmp_path / "nm")
    ev = events_dataset(tmp_path / "nm" / "Train", settings=EventsSettings(
        split_classes=(60, 20, 20), ways=2, window_ms=300, start="zero"))
    assert ev.class_names == [str(d) for d in range(10)] and len(ev) == 20
    assert ev.frame_shape == nm.frame_shape == (100, 2, 34, 34)
    assert (ev.meta["sensor_size"], ev.meta["dt_us"]) == ((34, 34), 3000)
    train = np.flatnonzero(~nm.meta["test_folder"])
    assert np.array_equal(ev.labels, nm.labels[train])
    ours, theirs = ev.frames(np.arange(20)), nm.frames(train)
    assert np.array_equal(ours, theirs) and int(ours.sum()) == int(theirs.sum()) > 5000


def _npy_reader(path):
    return as_events(np.load(path)), None


FORMATS = {   # name: (writer(path, ev), suffix, reader -> (events, stated size))
    "N-MNIST .bin": (ef.write_nmnist_bin, ".bin", lambda p: (read_nmnist_bin(p), (34, 34))),
    "AEDAT 2.0": (lambda p, ev: ef.write_aedat2(p, ev, sync=3), ".aedat",
                  lambda p: (read_aedat2(p), (128, 128))),
    "AEDAT 3.1": (ef.write_aedat31, ".aedat", lambda p: (read_aedat31(p), None)),
    "AEDAT 4.0": (lambda p, ev: ef.write_aedat4(p, ev, size=(40, 36)), ".aedat4",
                  lambda p: (read_aedat4(p), (40, 36))),
    "AEDAT 4.0 without size": (ef.write_aedat4, ".aedat4", lambda p: (read_aedat4(p), None)),
    "tonic .npy": (ef.write_npy, ".npy", _npy_reader),
    "tonic .npz": (lambda p, ev: ef.write_npz(p, ev, size=(34, 34)), ".npz",
                   lambda p: (as_events(np.load(p)["events"]), (34, 34))),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_gives_the_frames_of_its_reader(fmt, tmp_path):
    """Two classes of two files each; frames = the reader's events binned by to_frames with
    the stated rule: 10 bins of ceil(longest recording / 10) us from each file's first event,
    on the size the files state (else the smallest holding every event)."""
    write, suffix, read = FORMATS[fmt]
    rng = np.random.default_rng(1)
    paths = []
    for c in ("walk", "run"):
        for i in range(2):
            p = tmp_path / "own" / c / f"s{i}{suffix}"
            write(p, ef.events(rng, 150, 30, 28, 40_000 + 5_000 * i, t0=7_000 * i))
            paths.append(p)
    ds = events_dataset(tmp_path / "own", settings=EventsSettings(split_classes=(50, 0, 50),
                                                                  ways=1, bins=10))
    assert ds.class_names == ["run", "walk"] and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.meta["files"] == ["run/s0" + suffix, "run/s1" + suffix, "walk/s0" + suffix,
                                "walk/s1" + suffix]
    order = [2, 3, 0, 1]                           # paths were written walk first
    evs = [read(paths[k]) for k in order]
    stated = evs[0][1]
    size = stated or (max(int(e["x"].max()) for e, _ in evs) + 1,
                      max(int(e["y"].max()) for e, _ in evs) + 1)
    span = max(int(e["t"][-1] - e["t"][0]) + 1 for e, _ in evs)
    dt = math.ceil(span / 10)
    assert ds.meta["sensor_size"] == size and ds.meta["dt_us"] == dt
    assert ds.frame_shape == (10, 2, size[1], size[0])
    got = ds.frames(np.arange(4))
    for k, (e, _) in enumerate(evs):
        want = to_frames(e, size, FrameSpec(10, dt, int(e["t"][0])), binary=True)
        assert np.array_equal(got[k], want), k
    assert int(got.sum()) > 400
    assert set(ds.splits) == {"train", "test"} and ds.splits["train"].size == 1


def test_aedat2_is_read_as_tonic_reads_its_pairs_with_the_dvs128_layout(tmp_path):
    """AEDAT 2.0: the (address, timestamp) pairs tonic.io's reader gives, decoded with jAER's
    DVS128 layout (x = 127 - bits 1-7, y = bits 8-14, ON where bit 0 is 0); sync events
    (bit 15) are skipped."""
    from tonic.io import get_aer_events_from_file, read_aedat_header_from_file
    ev = ef.events(np.random.default_rng(2), 64, 128, 128, 10_000)
    path = tmp_path / "a.aedat"
    ef.write_aedat2(path, ev, sync=2)
    version, start, _ = read_aedat_header_from_file(str(path))
    raw = get_aer_events_from_file(str(path), version, start)
    assert version == 2.0 and len(raw) == 66
    ours = read_aedat2(path)
    keep = raw["address"] < 0x8000
    assert len(ours) == 64 and keep.sum() == 64
    np.testing.assert_array_equal(ours["x"], 127 - ((raw["address"][keep] >> 1) & 0x7F))
    np.testing.assert_array_equal(ours["y"], (raw["address"][keep] >> 8) & 0x7F)
    np.testing.assert_array_equal(ours["p"], (raw["address"][keep] & 1) == 0)
    np.testing.assert_array_equal(ours["t"], raw["timeStamp"][keep])
    for f in ("x", "y", "p", "t"):
        np.testing.assert_array_equal(ours[f], ev[f])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(UserError, match=r"a.aedat: 525 bytes of events .* not a whole number "
                                        r"of 8-byte AEDAT 2.0 events"):
        read_aedat2(path)


# --- the class split ---------------------------------------------------------------------------
def test_the_split_rule_sorted_shuffled_with_the_seed_cut_by_percent():
    s = EventsSettings(split_classes=(60, 20, 20), seed=3, ways=2)
    got = class_splits(10, s, "here")
    perm = np.random.default_rng(3).permutation(10)
    assert {k: v.tolist() for k, v in got.items()} == {
        "train": sorted(perm[:6].tolist()), "val": sorted(perm[6:8].tolist()),
        "test": sorted(perm[8:].tolist())}
    assert sorted(np.concatenate(list(got.values())).tolist()) == list(range(10))   # disjoint
    again = class_splits(10, s, "here")
    assert all(np.array_equal(got[k], again[k]) for k in got)                      # seeded
    other = class_splits(10, EventsSettings(seed=4, ways=2), "here")
    assert any(not np.array_equal(got[k], other[k]) for k in got)
    # floor per split, the rest to the first split above 0 %; a 0 % split is absent
    assert split_sizes(7, (60, 20, 20)) == {"train": 5, "val": 1, "test": 1}
    assert split_sizes(23, (60, 20, 20)) == {"train": 15, "val": 4, "test": 4}
    assert split_sizes(5, (0, 0, 100)) == {"train": 0, "val": 0, "test": 5}
    assert split_sizes(9, (0, 50, 50)) == {"train": 0, "val": 5, "test": 4}
    only = class_splits(5, EventsSettings(split_classes=(0, 0, 100), ways=5), "here")
    assert list(only) == ["test"] and only["test"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(UserError, match=r"^here: 23 classes split 60/20/20 give train 15, val 4, "
                                        r"test 4 classes; split 'val' needs >= 5 \(ways\)"):
        class_splits(23, EventsSettings(), "here")


def _npz_folder(root, classes=12, per_class=3, size=(8, 8), seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        for i in range(per_class):
            ef.write_npz(root / f"class_{chr(97 + c)}" / f"{i}.npz",
                         ef.events(rng, 120, *size, 20_000, t0=50_000), size=size)
    return root


def test_data_events_writes_the_settings_every_command_then_reads(tmp_path, capsys,
                                                                  monkeypatch):
    own = _npz_folder(tmp_path / "own")
    code, out, err = run_cli(["data", "events", own, "--split-classes", "50/25/25", "--seed", "1",
                          "--ways", "3", "--bins", "20"], capsys)
    assert code == 0, err
    s = read_settings(own)
    assert s == EventsSettings(split_classes=(50, 25, 25), seed=1, ways=3, bins=20)
    ds = load_dataset("events", root=own, seed=7)       # the tasks' seed leaves the split alone
    perm = np.random.default_rng(1).permutation(12)
    assert {k: v.tolist() for k, v in ds.splits.items()} == {
        "train": sorted(perm[:6].tolist()), "val": sorted(perm[6:9].tolist()),
        "test": sorted(perm[9:].tolist())}
    assert ds.frame_shape == (20, 2, 8, 8) and ds.meta["dt_us"] == 1000
    lines = out.splitlines()
    assert lines[0] == (f"events in {own}: 12 classes, 36 samples, frames [20, 2, 8, 8] (sensor "
                        "8x8, 20 bins of 1000 us from each sample's first event)")
    names = ", ".join(ds.class_names[int(c)] for c in ds.splits["val"])
    assert lines[2] == f"  val: 3 classes, 9 samples: {names}"
    assert lines[-1] == f"wrote {own / 'events.toml'}"
    # the frames are cached: a second load reads no recording
    assert len(list((tmp_path / "cache").glob("events-*.mlf"))) == 1

    def no_reading(path):
        raise AssertionError(f"read {path}")
    monkeypatch.setattr("metaloihi.datasets.events_folder.read_recording", no_reading)
    again = load_dataset("events", root=own)
    assert np.array_equal(again.frames(np.arange(36)), ds.frames(np.arange(36)))
    # flags that cannot be: one line naming the flag and the value, and no settings written
    code, _, err = run_cli(["data", "events", own, "--split-classes", "60/20"], capsys)
    assert (code, err) == (1, "error: --split-classes '60/20'; expected three whole "
                              "percentages TRAIN/VAL/TEST that sum to 100, e.g. 60/20/20\n")
    assert read_settings(own) == s


def test_data_events_help_names_every_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = run_cli(["data", "events", "--help"], capsys)
    assert code == 0
    options = [ln for ln in out.splitlines() if ln.lstrip("│ ").startswith("--")
               and not ln.lstrip("│ ").startswith("--help")]
    assert len(options) == 8
    assert all("default" in ln for ln in options), options


# --- the commands, end to end ------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_folder(tmp_path_factory):
    """12 classes (6 / 3 / 3), 3 recordings each, 8x8 sensor, 20 bins, and a 3-way random
    bundle with a silent head whose meta names the `events` data set."""
    from metaloihi.bridge.export import export_bundle, random_float_network
    base = tmp_path_factory.mktemp("own")
    own = _npz_folder(base / "own")
    (own / "events.toml").write_text(EventsSettings(split_classes=(50, 25, 25), ways=3,
                                                    bins=20).to_toml())
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(4,), seed=1)
    head = max(k for k in params if k.endswith(".weight"))
    params = {**params, head: params[head] * 0}                # a head that starts silent
    path, _ = export_bundle(base / "b.h5", specs, params, neurons, meta={"dataset": "events"},
                            head_range=0.5)
    return own, path


def test_fit_soel_then_adapt_cost_and_continual_on_your_own_classes(own_folder, tmp_path,
                                                                    capsys, monkeypatch):
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.datasets.tasks import encoded_task
    from metaloihi.onchip.session import adapt
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "cache"))
    own, bundle = own_folder
    fitted = tmp_path / "fitted.h5"
    code, out, err = run_cli(["fit-soel", bundle, "--root", own, "--tasks", "2", "--queries", "1",
                          "--out", fitted], capsys)
    assert code == 0, err
    fit = read_bundle(fitted).meta["rule_fit"]
    assert (fit["split"], fit["tasks"]) == ("val", 2)
    assert f"wrote {fitted}: theta" in out
    code, out, err = run_cli(["adapt", fitted, "--root", own, "--ways", "3", "--queries", "2",
                          "--seed", "4"], capsys)
    assert code == 0, err
    b, ds = read_bundle(fitted), load_dataset("events", root=own)
    task = encoded_task(ds, "test", 3, 1, 2, np.random.default_rng(4), b.encoding)
    assert set(task.classes.tolist()) == set(ds.splits["test"].tolist())
    res = adapt(b, task.support_x, task.support_y, task.query_x, task.query_y)
    assert out.startswith(f"3-way 1-shot on events/test (sim): accuracy {res.accuracy:.3f} on "
                          "6 queries")
    code, out, err = run_cli(["cost", fitted, "--root", own, "--tasks", "1", "--queries", "1"],
                             capsys)
    assert code == 0, err
    assert "task(s) of events/test" in out
    code, out, err = run_cli(["continual", fitted, "--root", own, "--splits", "test,val",
                          "--classes", "4", "--orders", "2", "--queries", "1",
                          "--no-references"], capsys)
    assert code == 0, err
    assert "head widened from 3 to 4 rows" in out and "continual learning: events test+val" in out
    # a split too small for the tasks: the sampler's one line
    code, _, err = run_cli(["adapt", fitted, "--root", own, "--ways", "3", "--queries", "3"],
                           capsys)
    assert code == 1 and "has 3 samples; shots + queries = 4" in err


def test_evaluate_takes_your_own_classes_like_any_data_set(tmp_path, capsys):
    """The shipped demo theta0 (frames [100, 2, 32, 32]) evaluated on 20 classes of .npy
    recordings: `evaluate --dataset events --root DIR`, 5 of them meta-test (50/25/25)."""
    import json
    rng = np.random.default_rng(3)
    own = tmp_path / "own"
    for c in range(20):
        for i in range(6):
            ef.write_npy(own / f"c{c:02d}" / f"{i}.npy", ef.events(rng, 200, 32, 32, 90_000))
    (own / "events.toml").write_text(EventsSettings(split_classes=(50, 25, 25), window_ms=100,
                                                    sensor_size=(32, 32)).to_toml())
    assert load_dataset("events", root=own).frame_shape == (100, 2, 32, 32)
    code, out, err = run_cli(["evaluate", ROOT / "checkpoints" / "demo" / "theta0.pt", "--dataset",
                          "events", "--root", own, "--tasks", "2", "--shots", "1",
                          "--no-baselines", "--out", tmp_path / "rows.json"], capsys)
    assert code == 0, err
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [(r["shots"], r["tasks"]) for r in rows] == [(1, 2), (1, 2)]
    # 2 tasks x 5 ways x 5 queries of random events (chance 0.2): measured 9 and 10 of 50 right
    # (SOEL-adapted theta0, then the prototype on its features); the float model may move a
    # query with another CPU's float32 sums
    assert [r["acc"] for r in rows] == pytest.approx([9 / 50, 10 / 50], abs=1 / 50)
    assert all(f"{100 * r['acc']:.1f}%" in out for r in rows)
