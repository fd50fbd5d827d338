"""The one event check (datasets/event_checks.py): what it refuses, in one line naming the
file, the column, the first bad event and its value; what it tolerates; that every reader's
events go through it; and that valid files load exactly the events that were written."""
import ast
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from helpers import event_files as ef
from metaloihi.base.errors import UserError
from metaloihi.datasets import paper_splits
from metaloihi.datasets.aedat import read_aedat2, read_aedat4, read_aedat31
from metaloihi.datasets.event_checks import TIME_JITTER_US, check_intervals, checked_events
from metaloihi.datasets.events import EVENT_DTYPE, FrameSpec, downsample, to_frames
from metaloihi.datasets.readers import (read_asl_mat, read_gesture_recording, read_nmnist_bin,
                                        read_numpy_events)
from metaloihi.datasets.recording_files import read_recording

DATASETS = Path(__file__).resolve().parents[1] / "datasets"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "cache"))


def _cols(**change):
    """Four good events (x, y, p, t), with the given columns replaced."""
    cols = {"x": np.array([1, 2, 3, 4]), "y": np.array([5, 6, 7, 8]),
            "p": np.array([0, 1, 1, 0]), "t": np.array([0, 10, 20, 30])}
    cols.update({k: np.asarray(v) for k, v in change.items()})
    return cols["x"], cols["y"], cols["p"], cols["t"]


# --- what is refused: one line, the file, the column, the first bad event, its value ----------
REFUSED = {
    "x = 1e6 on a 240x180 sensor": (
        dict(x=[1.0, 1e6, 2e6, 3.0]), dict(sensor=(240, 180), said="ASL-DVS"),
        "f.mat: event 1 at pixel (1000000, 6) is outside the 240x180 sensor (ASL-DVS; x in "
        "0..239, y in 0..179)"),
    "y past the sensor": (dict(y=[5, 6, 180, 8]), dict(sensor=(240, 180), said="ASL-DVS"),
                          "f.mat: event 2 at pixel (3, 180) is outside the 240x180 sensor"),
    "x beyond 16 bits, no sensor": (dict(x=[1, 2, 40000, 4]), {},
                                    "f.mat: event 2: x = 40000; beyond 32767"),
    "negative x": (dict(x=[1, -3, 3, 4]), {},
                   "f.mat: event 1: x = -3; pixel coordinates are whole numbers >= 0"),
    "fractional y": (dict(y=[5, 6, 7.5, 8]), {}, "f.mat: event 2: y = 7.5; pixel coordinates"),
    "NaN timestamp": (dict(t=[0.0, 10.0, np.nan, np.nan]), {},
                      "f.mat: event 2: t = nan; timestamps are whole microseconds, finite, >= 0"),
    "inf timestamp": (dict(t=[0.0, np.inf, 1.0, 2.0]), {}, "f.mat: event 1: t = inf;"),
    "negative timestamp": (dict(t=[-5, 10, 20, 30]), {}, "f.mat: event 0: t = -5; timestamps"),
    "timestamp in seconds": (dict(t=[0.0, 0.001, 0.002, 0.003]), {}, "event 1: t = 0.001;"),
    "timestamp past 2^62": (dict(t=np.array([0, 1, 2, 2 ** 63], np.uint64)), {},
                            "event 3: t = 9223372036854775808;"),
    "polarity 2": (dict(p=[0, 1, 2, 1]), {},
                   "f.mat: event 2: p = 2; polarity is 0/1 (OFF/ON), -1/1 or true/false"),
    "polarity 0 and -1 together": (dict(p=[1, 0, -1, 1]), {},
                                   "f.mat: event 1: p = 0 but event 2: p = -1; a file codes "
                                   "polarity 0/1 or -1/1, not both"),
    "polarity NaN": (dict(p=[0.0, np.nan, 1.0, 1.0]), {}, "event 1: p = nan;"),
    "clock stepping back": (dict(t=[0, 50_000, 20_000, 60_000]), {},
                            "f.mat: event 2 has timestamp t = 20000 us, 30000 us before event "
                            "1's 50000 us; a step back of more than 10000 us"),
    "text column": (dict(x=np.array(["abc"])), {}, "f.mat: field 'x' holds text (<U3)"),
    "cell column": (dict(t=np.array([None, 1], object)), {}, "field 't' holds objects"),
    "complex column": (dict(y=np.ones(4, complex)), {}, "field 'y' holds complex numbers"),
    "bool timestamps": (dict(t=np.ones(4, bool)), {}, "field 't' holds booleans"),
    "a matrix": (dict(x=np.ones((2, 2))), {}, "field 'x' has shape (2, 2); expected a vector"),
    "lengths differ": (dict(x=[1, 2, 3]), {},
                       "f.mat: fields x, y, p, t have lengths [3, 4, 4, 4]; expected one value"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_the_checker_refuses_names_file_column_index_and_value(case):
    change, kw, message = REFUSED[case]
    with pytest.raises(UserError) as err:
        checked_events("f.mat", *_cols(**change), **kw)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_the_files_own_names_and_the_byte_offset_appear_in_the_message():
    with pytest.raises(UserError) as err:
        checked_events("a.mat", *_cols(t=[0, 5, np.nan, 7]), names={"t": "ts", "p": "pol"},
                       label="variable", locate=lambda k: f" (byte offset {5 * k})")
    assert str(err.value) == ("a.mat: event 2 (byte offset 10): ts = nan; timestamps are whole "
                              "microseconds, finite, >= 0 and <= 2^62")
    with pytest.raises(UserError, match=r"a.mat: variable 'pol' holds text \(<U2\)"):
        checked_events("a.mat", *_cols(p=np.array(["on", "of", "on", "of"])),
                       names={"p": "pol"}, label="variable")


# --- what is tolerated, and how it is read ----------------------------------------------------
def test_whole_floats_bools_and_minus_one_polarity_read_as_integers_would():
    want = checked_events("f", *_cols())
    assert want.dtype == EVENT_DTYPE
    assert want["x"].tolist() == [1, 2, 3, 4] and want["p"].tolist() == [False, True, True, False]
    for change in (dict(x=[1.0, 2.0, 3.0, 4.0], t=[0.0, 10.0, 20.0, 30.0]),
                   dict(p=[-1, 1, 1, -1]), dict(p=[False, True, True, False]),
                   dict(p=np.array([0, 1, 1, 0], np.uint8), x=np.array([1, 2, 3, 4], np.uint64))):
        assert checked_events("f", *_cols(**change)).tobytes() == want.tobytes(), change


def test_a_step_back_up_to_the_jitter_is_sorted_stably_and_one_past_it_refused():
    t = [0, 20_000, 20_000 - TIME_JITTER_US, 30_000]
    ev = checked_events("f", *_cols(t=t))
    assert ev["t"].tolist() == [0, 10_000, 20_000, 30_000]
    assert ev["x"].tolist() == [1, 3, 2, 4]                     # event 2 moved before event 1
    ties = checked_events("f", *_cols(t=[0, 20_000, 19_999, 19_999]))
    assert ties["x"].tolist() == [1, 3, 4, 2]                   # stable among equal times
    with pytest.raises(UserError, match="event 2 has timestamp t = 9999 us, 10001 us before "
                                        "event 1's 20000 us"):
        checked_events("f", *_cols(t=[0, 20_000, 20_000 - TIME_JITTER_US - 1, 30_000]))
    # measured from the latest earlier event, not the previous one
    with pytest.raises(UserError, match="event 3 has timestamp t = 25000 us, 35000 us before "
                                        "event 1's 60000 us"):
        checked_events("f", *_cols(t=[0, 60_000, 55_000, 25_000]))


def test_an_empty_file_is_no_error_here():
    assert len(checked_events("f", [], [], [], [])) == 0


# --- label intervals --------------------------------------------------------------------------
EV = checked_events("r.aedat", *_cols(t=[1000, 2000, 3000, 4000]))


@pytest.mark.parametrize("start, end, message", [
    (3000, 2500, "l.csv: line 3: endTime_usec = 2500 <= startTime_usec = 3000; a sample ends "
                 "after it starts"),
    (2000, 2000, "line 3: endTime_usec = 2000 <= startTime_usec = 2000"),
    (-10, 2000, "line 3: startTime_usec = -10; times are microseconds >= 0"),
    (4001, 9000, "line 3: [startTime_usec = 4001, endTime_usec = 9000) us is outside the "
                 "recording: the events of r.aedat run from 1000 to 4000 us"),
    (0, 1000, "line 3: [startTime_usec = 0, endTime_usec = 1000) us is outside"),
])
def test_label_intervals_that_are_backwards_or_outside_the_recording(start, end, message):
    names = ("startTime_usec", "endTime_usec")
    with pytest.raises(UserError) as err:
        check_intervals("l.csv", [2, 3], [1000, start], [1500, end], names, EV, "r.aedat")
    assert message in str(err.value), str(err.value)


def test_intervals_partly_past_the_last_event_are_kept():
    names = ("start", "end")
    check_intervals("l.csv", [2, 3], [0, 3500], [1001, 10_000], names, EV, "r.aedat4")
    with pytest.raises(UserError, match="line 2: .* but r.aedat4 holds no events"):
        check_intervals("l.csv", [2], [0], [10], names, EV[:0], "r.aedat4")


# --- every reader builds its events through the checker ----------------------------------------
def _back(n=4):
    """Events whose clock steps back 1 s at event 2 (any binary format can hold it)."""
    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"] = [1, 2, 3, 4], [1, 2, 3, 4], [0, 1_500_000, 500_000, 1_600_000]
    return ev


def _asl_mat(path, ev):
    scipy.io.savemat(str(path), {"ts": ev["t"][:, None].astype(float),
                                 "x": ev["x"][:, None].astype(float),
                                 "y": (179 - ev["y"])[:, None].astype(float),
                                 "pol": ev["p"][:, None].astype(float)})


READERS = {   # name: (writer, file name, reader)
    "N-MNIST": (ef.write_nmnist_bin, "a.bin", read_nmnist_bin),
    "AEDAT 2.0": (ef.write_aedat2, "a.aedat", read_aedat2),
    "AEDAT 3.1": (ef.write_aedat31, "a.aedat", read_aedat31),
    "AEDAT 4.0": (ef.write_aedat4, "a.aedat4", read_aedat4),
    "ASL-DVS .mat": (_asl_mat, "a.mat", read_asl_mat),
    "tonic .npy": (ef.write_npy, "a.npy", lambda p: read_numpy_events(p)[0]),
    "tonic .npz": (ef.write_npz, "a.npz", lambda p: read_numpy_events(p)[0]),
    "events folder": (ef.write_aedat4, "a.aedat4", lambda p: read_recording(p).events),
}


@pytest.mark.parametrize("fmt", list(READERS))
def test_every_reader_refuses_a_clock_stepping_back_and_reads_valid_files_exactly(fmt, tmp_path):
    write, name, read = READERS[fmt]
    write(tmp_path / name, _back())
    with pytest.raises(UserError) as err:
        read(tmp_path / name)
    assert str(err.value).startswith(f"{tmp_path / name}") and \
        "has timestamp" in str(err.value) and "1000000 us before event 1's 1500000 us" in \
        str(err.value), str(err.value)
    ev = ef.events(np.random.default_rng(7), 300, 34, 34, 300_000)
    write(tmp_path / name, ev)
    assert read(tmp_path / name).tobytes() == ev.tobytes()


def test_no_module_but_the_checker_builds_events_from_file_data():
    """A new reader cannot skip the check: only events.py (in-memory transforms), dvs.py (the
    emulator's own events) and event_checks.py use the event dtype or its constructors."""
    allowed = {"events.py", "event_checks.py", "dvs.py", "__init__.py"}
    used = {}
    for path in sorted(DATASETS.glob("*.py")):
        names = {n.id if isinstance(n, ast.Name) else n.attr
                 for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, (ast.Name, ast.Attribute))}
        hits = names & {"EVENT_DTYPE", "as_events", "make_events"}
        if hits and path.name not in allowed:
            used[path.name] = sorted(hits)
    assert used == {}
    readers = [p.name for p in DATASETS.glob("*.py") if "checked_events(" in p.read_text()]
    assert sorted(readers) == ["aedat.py", "event_checks.py", "readers.py"]


# --- valid files: the same frames as before the checker -----------------------------------------
def test_asl_and_gesture_frames_are_those_of_the_written_events(tmp_path):
    """Frames of valid files = frames binned from the very events written (the checker changes
    nothing on them); a file whose events interleave within the jitter gives the frames of its
    sorted events."""
    rng = np.random.default_rng(11)
    written = []
    for c in paper_splits.ASL_LETTERS:
        ev = ef.events(rng, 200, 240, 180, 100_000)
        (tmp_path / "asl" / c).mkdir(parents=True)
        _asl_mat(tmp_path / "asl" / c / f"{c}_0.mat", ev)
        written.append(ev)
    ds = paper_splits.asl_dvs(tmp_path / "asl", use_cache=False)
    spec = FrameSpec(100, 1000)
    got = ds.frames(np.arange(len(written)))
    for i, ev in enumerate(written):
        assert np.array_equal(got[i], to_frames(*downsample(ev, (240, 180), 6), spec,
                                                binary=True)), i
    assert int(got.sum()) > 24 * 150
    ev = ef.events(rng, 2000, 128, 128, 200_000)
    ef.write_aedat31(tmp_path / "g" / "user01_led.aedat", ev)
    (tmp_path / "g" / "user01_led_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n3,0,100000\n5,100000,200000\n")
    samples = read_gesture_recording(tmp_path / "g" / "user01_led.aedat")
    assert [cls for _, cls in samples] == [2, 4]
    first = ev[ev["t"] < 100_000]
    assert samples[0][0].tobytes() == first.tobytes() and len(first) > 900
    jittered = ev.copy()
    jittered[100:110] = jittered[100:110][::-1]                  # a few us out of order
    assert 0 < jittered["t"][100] - jittered["t"][109] <= TIME_JITTER_US
    ef.write_aedat31(tmp_path / "g" / "user01_led.aedat", jittered)
    again = read_gesture_recording(tmp_path / "g" / "user01_led.aedat")
    assert np.array_equal(again[0][0]["t"], samples[0][0]["t"])
    for (a, _), (b, _) in zip(again, samples):
        assert np.array_equal(to_frames(a, (128, 128), FrameSpec(10, 10_000)),
                              to_frames(b, (128, 128), FrameSpec(10, 10_000)))
