"""`metaloihi sim NET`: run a netx file (lava-dl's .net, or our bundle's frozen layers) in
sim/ (bit-exact, a batch at once) or through netx on Lava, and write every population's
spikes, u and v at every step; --compare runs both and says whether they are identical."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.app import app
from metaloihi.cli.options import io_paths

RECORDABLE = ("s", "u", "v")


def _save(out: Path, net, rec: dict, record: tuple[str, ...]) -> None:
    arrays = {"populations": np.array([name for name, _ in net.populations])}
    for i, (name, shape) in enumerate(net.populations):
        for key in record:
            full = {"s": "spikes"}.get(key, key)
            a = rec[full][i]
            arrays[f"{i}_{key}"] = a.reshape(*a.shape[:2], *shape)
    from metaloihi.base.atomic import atomic_path
    with atomic_path(out, "trace") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


@app.command("sim")
@io_paths(inputs=("net_file", "input_"), outputs=("out",))
def sim(
    net_file: Path = typer.Argument(..., metavar="NET", help="netx file (.net/.h5)."),
    input_: Path = typer.Option(..., "--input", help="Input .npy [batch, steps, *input_shape]: "
                                "spikes (nonzero), graded values (--input-bits > 0), or, where "
                                "the input layer has a neuron, its bias mantissa per step (an "
                                "SDNN input layer: the integers its Delta encodes, at its a_in)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Steps to run (default: the input's)."),
    out: Optional[Path] = typer.Option(None, help="Write the trace here (.npz): per population "
                                       "i, arrays i_s, i_u, i_v of shape [batch, steps, *shape] "
                                       "in torch's (C, H, W) order (Lava's Monitor gives "
                                       "[steps, W, H, C] per sample), after each step's update "
                                       "and reset; 'populations' names them. An SDNN "
                                       "(sigma-delta) layer records i_s = its graded message "
                                       "(int, Lava's s_out), i_u = sigma (the input Delta: act, "
                                       "the input << 12) and i_v = residue (a sigma_output "
                                       "layer: 0)."),
    record: str = typer.Option("s,u,v", help="What to write: any of s, u, v."),
    backend: str = typer.Option("sim", help="sim (bit-exact, batched) or lava (netx on Lava's "
                                "CPU simulator, one sample at a time)."),
    compare: bool = typer.Option(False, help="Run both; print per population whether every "
                                 "array is identical, and the speed ratio."),
    reset_interval: Optional[int] = typer.Option(None, min=1, help="netx's reset_interval "
                                                 "(default: none, no reset)."),
    reset_offset: int = typer.Option(0, min=0, help="netx's reset_offset."),
    input_bits: int = typer.Option(0, min=0, help="netx's input_message_bits (0: spikes)."),
) -> None:
    """Run NET on an input and write every population's spikes, u and v at every step."""
    from metaloihi.bridge.deploy import load_net_input
    from metaloihi.bridge.netx_read import read_netx
    from metaloihi.sim.network_run import run
    keys = tuple(k.strip() for k in record.split(",") if k.strip())
    if not keys or any(k not in RECORDABLE for k in keys):
        raise UserError(f"--record {record!r}: a comma list of {', '.join(RECORDABLE)}")
    if backend not in ("sim", "lava"):
        raise UserError(f"--backend {backend!r}: sim or lava")
    kw = dict(reset_interval=reset_interval, reset_offset=reset_offset,
              input_message_bits=input_bits)
    net = read_netx(net_file, **kw)
    x = load_net_input(input_, net, steps)
    uv = "u" in keys or "v" in keys or compare
    results, seconds = {}, {}
    if compare:
        run(net, x[:1, :1])       # numba's cached kernels load on first use: not sim/'s speed
    for name in (("sim", "lava") if compare else (backend,)):
        t0 = time.perf_counter()
        if name == "sim":
            results[name] = run(net, x, record_uv=uv)
        else:
            from metaloihi.bridge import netx_lava
            results[name] = netx_lava.run(net_file, net, x, record_uv=uv, **kw)
        seconds[name] = time.perf_counter() - t0
        typer.echo(f"{name}: {x.shape[0]} input(s) x {x.shape[1]} steps in "
                   f"{seconds[name]:.3f} s")
    if compare:
        same_all = True
        for i, (pop, _) in enumerate(net.populations):
            same = {k: np.array_equal(results["sim"][k][i], results["lava"][k][i])
                    for k in ("spikes", "u", "v")}
            same_all &= all(same.values())
            typer.echo(f"{pop}: " + ", ".join(f"{k} {'identical' if v else 'DIFFERENT'}"
                                              for k, v in same.items()))
        typer.echo(f"sim/ is {seconds['lava'] / max(seconds['sim'], 1e-9):.0f}x Lava here "
                   f"({'identical' if same_all else 'NOT identical'})")
    if out is not None:
        _save(out, net, results["sim" if compare else backend], keys)
        typer.echo(f"wrote {out}")
    if compare and not same_all:
        raise typer.Exit(1)
