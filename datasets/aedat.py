"""AEDAT readers with validation: 2.0 (jAER, DVS128), 3.1 (DVS128 Gesture) and 4.0 (N-Omniglot,
DV software).

tonic.io reads AEDAT 3.1 packets without checking their type, size or completeness (and its
read_dvs_ibm fails outright in tonic 1.7), and needs the optional `aedat` package for 4.0; these readers check every header against the bytes present
and raise a UserError naming the file and the offset instead of a parser traceback. For a
well-formed 3.1 polarity file they return what tonic.io's packet reader and read_dvs_ibm's bit
layout give (tested).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from metaloihi.datasets.event_checks import checked_events
from metaloihi.base.errors import UserError

POLARITY_EVENT = 1  # AEDAT 3.1 event type of DVS polarity events
AEDAT2_EVENT = np.dtype([("addr", ">u4"), ("t", ">i4")])   # big-endian address, timestamp (us)
DVS128_SIZE = (128, 128)
AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
AEDAT4_EVENT = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])


def _read(path: Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    return path.read_bytes()


def _data_start(data: bytes, path, version: str, strict: bool) -> int:
    """Where the events start after the '#' header lines of an AEDAT `version` file; strict:
    a header that never ends is refused (3.x), else it is all header (2.0)."""
    if not data.startswith(b"#!AER-DAT" + version[0].encode()):
        raise UserError(f"{path}: not an AEDAT {version} file (first bytes {data[:12]!r}); "
                        f"expected '#!AER-DAT{version}'")
    pos = 0
    while pos < len(data) and data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0 and strict:
            raise UserError(f"{path}: header never ends (no '#!END-HEADER' line)")
        pos = len(data) if end < 0 else end + 1
    return pos


def _aedat3_data_start(data: bytes, path) -> int:
    return _data_start(data, path, "3.1", strict=True)


def read_aedat2(path) -> np.ndarray:
    """AEDAT 2.0 (jAER) DVS128 events -> EVENT_DTYPE array (t in us), checked and sorted by
    event_checks.checked_events.

    After the '#' header lines come big-endian (uint32 address, int32 timestamp) pairs. The
    address is decoded as jAER's DVS128 extractor does: x = 127 - bits 1-7, y = bits 8-14,
    ON where bit 0 is 0; addresses with bit 15 or above set (sync/special events) are skipped.
    tonic.io reads the same pairs (get_aer_events_from_file; tested) but its read_dvs_128 fails
    in tonic 1.7 and swaps x and y."""
    data = _read(path)
    pos = _data_start(data, path, "2.0", strict=False)
    body = len(data) - pos
    if body % AEDAT2_EVENT.itemsize:
        raise UserError(f"{path}: {body} bytes of events after the header (at byte {pos}) is "
                        f"not a whole number of 8-byte AEDAT 2.0 events (truncated? the last "
                        f"event starts at byte {pos + body - body % 8})")
    raw = np.frombuffer(data, AEDAT2_EVENT, body // 8, pos)
    dvs = raw[raw["addr"] < 0x8000]
    addr = dvs["addr"].astype(np.int64)
    return checked_events(path, DVS128_SIZE[0] - 1 - ((addr >> 1) & 0x7F), (addr >> 8) & 0x7F,
                          (addr & 1) == 0, dvs["t"].astype(np.int64), sensor=DVS128_SIZE,
                          said="DVS128")


def read_aedat31(path, sensor: tuple[int, int] | None = None, said: str = "") -> np.ndarray:
    """AEDAT 3.1 polarity events -> EVENT_DTYPE array (x, y, p, t in us), checked (inside
    `sensor`, (W, H), where the caller knows it; `said` names it) and sorted by
    event_checks.checked_events."""
    data = _read(path)
    pos = _aedat3_data_start(data, path)
    chunks = []
    while pos < len(data):
        if len(data) - pos < 28:
            raise UserError(f"{path}: truncated packet header at byte {pos} "
                            f"({len(data) - pos} of 28 bytes)")
        etype, _src, esize, _tsoff, overflow, capacity, number, _valid = np.frombuffer(
            data, "<i2,<i2,<i4,<i4,<i4,<i4,<i4,<i4", 1, pos)[0].tolist()
        pos += 28
        if esize <= 0 or capacity < 0 or number < 0 or number > capacity:
            raise UserError(f"{path}: corrupt packet header at byte {pos - 28} (event size "
                            f"{esize}, capacity {capacity}, number {number})")
        nbytes = esize * capacity
        if len(data) - pos < nbytes:
            raise UserError(f"{path}: truncated packet at byte {pos - 28}: needs {nbytes} bytes, "
                            f"{len(data) - pos} left")
        if etype == POLARITY_EVENT:
            if esize != 8:
                raise UserError(f"{path}: polarity packet at byte {pos - 28} has event size "
                                f"{esize}; expected 8")
            raw = np.frombuffer(data, "<u4,<u4", number, pos)
            addr, ts = raw["f0"], raw["f1"].astype(np.int64) | (np.int64(overflow) << 31)
            valid = (addr & 1).astype(bool)
            chunks.append((addr[valid], ts[valid]))
        pos += nbytes
    addr = np.concatenate([a for a, _ in chunks]) if chunks else np.zeros(0, np.uint32)
    ts = np.concatenate([t for _, t in chunks]) if chunks else np.zeros(0, np.int64)
    return checked_events(path, (addr >> 17) & 0x1FFF, (addr >> 2) & 0x1FFF, (addr >> 1) & 1,
                          ts, sensor=sensor, said=said)


class _Flat:
    """Just enough FlatBuffers to read a table's scalar, string and vector fields."""

    def __init__(self, buf: bytes, table: int, path, what: str):
        self.buf, self.table, self.path, self.what = buf, table, path, what
        try:
            vt = table - int(np.frombuffer(buf, "<i4", 1, table)[0])
            vt_size = int(np.frombuffer(buf, "<u2", 1, vt)[0])
            self.fields = np.frombuffer(buf, "<u2", (vt_size - 4) // 2, vt + 4).tolist()
        except (ValueError, IndexError):
            raise UserError(f"{path}: corrupt {what} (bad flatbuffer table)") from None

    def _at(self, i):
        return self.table + self.fields[i] if i < len(self.fields) and self.fields[i] else None

    def scalar(self, i, dtype, default):
        p = self._at(i)
        return default if p is None else np.frombuffer(self.buf, dtype, 1, p)[0].item()

    def vector(self, i, dtype):
        p = self._at(i)
        if p is None:
            return np.zeros(0, dtype)
        try:
            start = p + int(np.frombuffer(self.buf, "<u4", 1, p)[0])
            n = int(np.frombuffer(self.buf, "<u4", 1, start)[0])
            return np.frombuffer(self.buf, dtype, n, start + 4)
        except ValueError:
            raise UserError(f"{self.path}: corrupt {self.what} (vector runs past the end)") from None


def _decompress(blob: bytes, compression: int, path) -> bytes:
    if compression == 0:
        return blob
    try:
        if compression in (1, 2):
            import lz4.frame
            return lz4.frame.decompress(blob)
        if compression in (3, 4):
            import zstandard
            return zstandard.ZstdDecompressor().decompress(blob)
    except ImportError:
        lib = "lz4" if compression in (1, 2) else "zstandard"
        raise UserError(f"{path}: AEDAT4 packets are {'LZ4' if lib == 'lz4' else 'Zstd'}-"
                        f"compressed; install the '{lib}' package to read them") from None
    except Exception as err:  # noqa: BLE001 - any decompressor failure is a corrupt file
        raise UserError(f"{path}: corrupt compressed AEDAT4 packet ({err})") from None
    raise UserError(f"{path}: unknown AEDAT4 compression type {compression}; expected 0-4")


def read_aedat4(path, sensor: tuple[int, int] | None = None, said: str = "") -> np.ndarray:
    """AEDAT 4.0 event packets ("EVTS" flatbuffers) -> EVENT_DTYPE array, checked and sorted
    (read_aedat4_sized)."""
    return read_aedat4_sized(path, sensor, said)[0]


def _sensor_size(info: str) -> tuple[int, int] | None:
    """(sizeX, sizeY) of the first stream the IOHeader's infoNode XML describes, or None."""
    sx = re.search(r'key="sizeX"[^>]*>\s*(\d+)\s*<', info)
    sy = re.search(r'key="sizeY"[^>]*>\s*(\d+)\s*<', info)
    return (int(sx.group(1)), int(sy.group(1))) if sx and sy else None


def read_aedat4_sized(path, sensor: tuple[int, int] | None = None,
                      said: str = "") -> tuple[np.ndarray, tuple[int, int] | None]:
    """read_aedat4's events and the sensor size (W, H) the file's IOHeader states (the DV
    software writes sizeX/sizeY into its infoNode), or None where it states none. Events are
    checked by event_checks.checked_events inside `sensor` (the caller's, `said` naming it),
    else inside the header's size."""
    data = _read(path)
    if not data.startswith(AEDAT4_MAGIC):
        raise UserError(f"{path}: not an AEDAT 4.0 file (first bytes {data[:14]!r}); "
                        "expected '#!AER-DAT4.0'")
    pos = len(AEDAT4_MAGIC)
    if len(data) < pos + 4:
        raise UserError(f"{path}: truncated AEDAT4 header")
    n = int(np.frombuffer(data, "<u4", 1, pos)[0])
    header = data[pos + 4: pos + 4 + n]
    if len(header) < n or n < 8:
        raise UserError(f"{path}: truncated AEDAT4 IOHeader ({len(header)} of {n} bytes)")
    root = _Flat(header, int(np.frombuffer(header, "<u4", 1, 0)[0]), path, "IOHeader")
    compression = root.scalar(0, "<i4", 0)
    table_pos = root.scalar(1, "<i8", -1)
    stated = _sensor_size(root.vector(2, "u1").tobytes().decode("utf-8", "replace"))
    pos += 4 + n
    end = table_pos if 0 < table_pos <= len(data) else len(data)
    chunks = []
    while pos < end:
        if end - pos < 8:
            raise UserError(f"{path}: truncated AEDAT4 packet header at byte {pos}")
        _stream, size = np.frombuffer(data, "<i4", 2, pos).tolist()
        if size < 0 or end - pos - 8 < size:
            raise UserError(f"{path}: truncated AEDAT4 packet at byte {pos}: needs {size} "
                            f"bytes, {end - pos - 8} left")
        buf = _decompress(data[pos + 8: pos + 8 + size], compression, path)
        pos += 8 + size
        if len(buf) < 12 or buf[8:12] != b"EVTS":
            continue  # frames, IMU, triggers: not events
        body = buf[4:]  # size-prefixed flatbuffer
        table = _Flat(body, int(np.frombuffer(body, "<u4", 1, 0)[0]), path, "event packet")
        chunks.append(table.vector(0, AEDAT4_EVENT))
    raw = np.concatenate(chunks) if chunks else np.zeros(0, AEDAT4_EVENT)
    if sensor is None and stated is not None:
        sensor, said = stated, "its header's sizeX/sizeY"
    ev = checked_events(path, raw["x"], raw["y"], raw["on"] > 0, raw["t"], sensor=sensor,
                        said=said)
    return ev, stated
