"""Small writers of event recordings in the formats datasets/ reads, each after its format's
layout as the project's readers (datasets/readers.py, datasets/aedat.py) and tonic.io read it:
N-MNIST .bin, AEDAT 2.0 (jAER DVS128), AEDAT 3.1, AEDAT 4.0, tonic-style
.npy / .npz. `events(rng, n, w, h, t_max)` draws random EVENT_DTYPE events sorted by time."""
from __future__ import annotations

import struct

import numpy as np

from metaloihi.datasets.events import make_events


def events(rng, n, w, h, t_max, t0=0):
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n), rng.random(n) < .5,
                       t0 + np.sort(rng.integers(0, t_max, n)))


def _parent(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_nmnist_bin(path, ev):
    """5 bytes per event: x, y, polarity bit 7 + timestamp bits 22-16, bits 15-8, bits 7-0."""
    t = ev["t"].astype(np.int64)
    raw = np.stack([ev["x"], ev["y"], (ev["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F),
                    (t >> 8) & 0xFF, t & 0xFF], 1).astype(np.uint8)
    _parent(path).write_bytes(raw.tobytes())


def write_aedat2(path, ev, sync=0):
    """jAER AEDAT 2.0: '#' header lines, then big-endian (uint32 address, int32 timestamp);
    DVS128 address: x flipped in bits 1-7, y in bits 8-14, bit 0 = 1 for OFF. `sync` extra
    events with bit 15 set (external sync, skipped by readers) are added at the start."""
    addr = (((127 - ev["x"].astype(np.uint32)) << 1) | (ev["y"].astype(np.uint32) << 8)
            | (~ev["p"]).astype(np.uint32))
    t = ev["t"].astype(np.int64)
    if sync:
        addr = np.r_[np.full(sync, 0x8000, np.uint32), addr]
        t = np.r_[np.zeros(sync, np.int64), t]
    rec = np.zeros(len(addr), [("a", ">u4"), ("t", ">i4")])
    rec["a"], rec["t"] = addr, t
    head = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
            b"# HardwareInterface: DVS128\r\n")
    _parent(path).write_bytes(head + rec.tobytes())


def write_aedat31(path, ev, per_packet=50):
    out = [b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"]
    for lo in range(0, len(ev), per_packet):
        e = ev[lo:lo + per_packet]
        n = len(e)
        out.append(struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, n, n, n))
        addr = ((e["x"].astype(np.uint32) << 17) | (e["y"].astype(np.uint32) << 2)
                | (e["p"].astype(np.uint32) << 1) | 1)
        out.append(np.stack([addr, e["t"].astype(np.uint32)], 1).astype("<u4").tobytes())
    _parent(path).write_bytes(b"".join(out))


def aedat4_info(size=None) -> bytes:
    """An IOHeader infoNode as the DV software writes it; with sizeX/sizeY where size is given."""
    if size is None:
        return b"<dv version=\"2.0\"><node name=\"outInfo\"/></dv>"
    return (b"<dv version=\"2.0\"><node name=\"outInfo\"><node name=\"0\"><attr key=\""
            b"typeIdentifier\" type=\"string\">EVTS</attr><node name=\"info\"><attr key=\"sizeX\" "
            b"type=\"int\">"
            + str(size[0]).encode() + b"</attr><attr key=\"sizeY\" type=\"int\">"
            + str(size[1]).encode() + b"</attr></node></node></node></dv>")


def _ioheader(compression=0, info=None):
    info = aedat4_info() if info is None else info
    buf = struct.pack("<I", 16)                              # root table at 16
    buf += struct.pack("<HHHHH", 10, 20, 4, 8, 16) + b"\0\0"  # vtable at 4
    buf += struct.pack("<iiqI", 12, compression, -1, 4)     # table: soffset, fields
    buf += struct.pack("<I", len(info)) + info + b"\0"
    return buf


def _event_packet(ev):
    body = struct.pack("<I", 16) + b"EVTS" + struct.pack("<HHH", 6, 8, 4) + b"\0" * 2
    body += struct.pack("<iI", 8, 8) + b"\0" * 4              # table at 16, vector at 28
    body += struct.pack("<I", len(ev))
    rec = np.zeros(len(ev), [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"),
                             ("pad", "V3")])
    rec["t"], rec["x"], rec["y"], rec["on"] = ev["t"], ev["x"], ev["y"], ev["p"]
    body += rec.tobytes()
    return struct.pack("<I", len(body)) + body


def write_aedat4(path, ev, compression=0, per_packet=40, size=None):
    """AEDAT 4.0: magic, IOHeader flatbuffer (compression, table position -1, infoNode), then
    (stream id, size) + size-prefixed "EVTS" packet flatbuffers. `compression` is only the
    header's flag: the packets are written uncompressed (for the readers' error paths)."""
    head = _ioheader(compression, aedat4_info(size))
    out = [b"#!AER-DAT4.0\r\n", struct.pack("<I", len(head)), head]
    for lo in range(0, len(ev), per_packet):
        pkt = _event_packet(ev[lo:lo + per_packet])
        out.append(struct.pack("<ii", 0, len(pkt)) + pkt)
    _parent(path).write_bytes(b"".join(out))


TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def tonic_events(ev):
    """The same events in tonic's x, y, t, p dtype (tonic.io.events_struct)."""
    out = np.empty(len(ev), TONIC_DTYPE)
    for f in ("x", "y", "t", "p"):
        out[f] = ev[f]
    return out


def write_npy(path, ev):
    np.save(_parent(path), tonic_events(ev))


def write_npz(path, ev, size=None):
    arrays = {"events": tonic_events(ev)}
    if size is not None:
        arrays["sensor_size"] = np.array([size[0], size[1], 2])
    np.savez(_parent(path), **arrays)
