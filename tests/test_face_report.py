"""`metaloihi report` (metaloihi/report/: the HTML page), the page also rendered in headless
Chromium (installed by ./run test where it can be). (The demo's figure: test_face_plots.py.)"""
import gzip
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.images import png_colours
from metaloihi import report as rp
from metaloihi.base.errors import UserError

WAYS = 5
NAMES = ["clap_2", "wave_right_2", "circle_ccw_1x_left", "roll_forward", "drums_2"]


# --- report ---------------------------------------------------------------------------------
def write_log(path: Path, n: int = 60, soel: bool = True) -> Path:
    recs = []
    for i in range(1, n + 1):
        r = {"iteration": i, "meta_loss": 1.6 - i / n, "meta_train_acc": 0.2 + 0.5 * i / n,
             "tasks_per_s": 10.0, "elapsed_s": 2.0 * i}
        if i % 20 == 0:
            r["meta_val_acc"] = 0.3 + 0.4 * i / n
        if soel:
            r.update({"soel.threshold": 2.0 * 0.98 ** i, "soel.eta": 3e-4 * 1.02 ** i})
        recs.append(json.dumps(r))
    text = "\n".join(recs) + "\n" + '{"iteration": 61, "meta_lo'     # torn last line
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


EVAL_ROWS = [
    {"name": "MAML SOEL-inner, gestures, adapt=head: demo/best.pt", "shots": 1, "acc": 0.768,
     "ci95": 0.007, "tasks": 600},
    {"name": "random init + same inner loop <b>bold?</b>", "shots": 1, "acc": 0.264,
     "ci95": 0.0075, "tasks": 600},
]
GAP = {"checkpoint": "runs/demo/best.pt", "split": "demo", "ways": 5, "shots": 1, "tasks": 100,
       "float": {"acc": 0.768, "ci95": 0.012}, "fixed": {"acc": 0.752, "ci95": 0.013},
       "lava": {"acc": None, "ci95": float("nan"), "tasks": 0, "identical_to_fixed": None},
       "agreement": {"mean": 0.97}, "notes": "a <note> & more"}     # studies/deployment_gap.py's shape
SPEED = {"rows": [{"what": "one 5-way 1-shot session", "sim_s": 0.92, "lava_s": 54.8,
                   "identical": True}], "machine": "2-core CPU"}
SIM_VS_LAVA = {"lava_s_per_step": 0.0576, "lava_s_per_sample": 5.76,
               "sim_s_per_sample_batch1": 0.0043, "sim_s_per_sample_batch64": 0.00287,
               "ratio_one_sample": 1339.5, "output_spikes_identical": True}   # its --json


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from metaloihi.bridge import export as ex
    from metaloihi.rules.soel import LearntRule
    specs, params, neurons = ex.random_float_network((2, 8, 8), WAYS, (4, 8), seed=0)
    path, _ = ex.export_bundle(tmp_path_factory.mktemp("b") / "tiny.h5", specs, params, neurons,
                               rule=LearntRule(theta=0.2121, eta=0.00231), labels=tuple(NAMES),
                               meta={"source": "random seed 0 (test)"})
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, bundle) -> rp.Inputs:
    d = tmp_path_factory.mktemp("in")
    (d / "eval_demo_split.json").write_text(json.dumps(EVAL_ROWS))
    (d / "deployment_gap.json").write_text(json.dumps(GAP))
    (d / "sim_vs_lava.json").write_text(json.dumps(SPEED))
    return rp.Inputs(logs=[write_log(d / "demo_soel_metrics.jsonl.gz")],
                     evals=[d / "eval_demo_split.json"], bundles=[bundle],
                     gaps=[d / "deployment_gap.json"], speeds=[d / "sim_vs_lava.json"])


def test_report_without_inputs_says_not_measured(tmp_path):
    page = rp.build_report(tmp_path / "r", rp.Inputs()).read_text()
    for section in ("accuracy", "curves", "gap", "speed", "soel", "bundles"):
        assert f'id="{section}"' in page
    assert page.count("not measured") >= 5
    assert "98.23 ± 1.12%" in page and "paper (Stewart &amp; Neftci 2022)" in page
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["index.html"]


def test_report_escapes_text_and_reads_every_input(tmp_path, inputs):
    page = rp.build_report(tmp_path / "r", inputs, title="a <title> & co").read_text()
    assert "<b>bold?</b>" not in page and "&lt;b&gt;bold?&lt;/b&gt;" in page
    assert "a &lt;title&gt; &amp; co" in page and "a &lt;note&gt; &amp; more" in page
    assert "76.8 ± 0.7%" in page and "gestures (embedded)" in page
    assert "demo (file name)" in page                      # split read from eval_demo_split.json
    assert page.count("gestures (embedded)") >= 3          # the baseline row inherits it
    assert "75.2 ± 1.3%" in page and "-1.6 pp" in page and "60x" in page   # gap, speed
    assert "0.2121" in page and "0.00231" in page          # bundle theta / eta
    assert "1.96 → 0.5951" in page                         # SOEL theta in the log: first → last
    assert '<img src="curves.png"' in page and (tmp_path / "r" / "curves.png").stat().st_size
    assert png_colours(tmp_path / "r" / "curves.png") > 20


def test_paper_figures_are_quoted_from_the_reference_text():
    ref = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
        "stewart-neftci-2022-meta-learning-snn.txt"
    if not ref.is_file():
        pytest.skip(f"reference text not here ({ref})")
    text = ref.read_text()
    for row in rp.PAPER:
        for fig in (row["val"], row["test"]):
            assert fig is None or fig in text, fig


@pytest.mark.parametrize("content, match", [
    ({"float": {"acc": 76.8}}, r"float.acc = 76.8; expected a fraction"),
    ({"fixed": 0.7, "float": {"acc": 0.7}}, r"fixed must be an object"),
    ({"notes": "x"}, r"expected an object with float / fixed / lava"),
])
def test_bad_gap_file_names_the_key(tmp_path, content, match):
    p = tmp_path / "gap.json"
    p.write_text(json.dumps(content))
    with pytest.raises(UserError, match=match):
        rp.read_gap(p)


def test_speed_reads_the_sim_vs_lava_benchmark_json(tmp_path):
    p = tmp_path / "sim_vs_lava.json"
    p.write_text(json.dumps(SIM_VS_LAVA))
    rows = rp.read_speed(p)["rows"]
    assert [(r["what"], r["sim_s"], r["lava_s"]) for r in rows] == [
        ("1 sample", 0.0043, 5.76), ("per sample, batch of 64", 0.00287, 5.76)]
    page = rp.build_report(tmp_path / "r", rp.Inputs(speeds=[p])).read_text()
    assert "1340x" in page and "2007x" in page


def test_cli_report_defaults_to_checkpoints_folder(tmp_path, monkeypatch, capsys):
    ck = tmp_path / "checkpoints" / "interim"
    ck.mkdir(parents=True)
    write_log(ck / "demo_metrics.jsonl", soel=False)
    (ck / "eval_test.json").write_text(json.dumps(EVAL_ROWS))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["report", "--out", "rep"], capsys)
    assert code == 0, err
    assert "using 2 file(s) under checkpoints/" in out
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "test (file name)" in page and "not measured: no bundle given" in page
    code, _, err = run_cli(["report", "--out", "rep", "--gap", "missing.json"], capsys)
    assert code == 1 and "missing.json" in err


# --- the page in a browser ------------------------------------------------------------------
CHROMIUM = os.environ.get("METALOIHI_CHROMIUM", "/usr/bin/chromium")


def chromium(args: list[str], tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # the browser and its helpers: our own group
        proc.communicate(timeout=30)
        pytest.fail(f"chromium did not finish within {timeout} s: {' '.join(cmd)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.skipif(not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)),
                    reason=f"{CHROMIUM} missing: `./run test` installs it (apt-get, as root or "
                           "with password-less sudo); else `sudo apt-get install "
                           "--no-install-recommends chromium`")
def test_report_renders_in_headless_chromium(tmp_path, inputs):
    page = rp.build_report(tmp_path / "report", inputs)
    url = page.resolve().as_uri()
    shot = tmp_path / "screenshot.png"
    res = chromium([f"--screenshot={shot}", "--window-size=1280,2000", url], tmp_path / "p1")
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000
    from PIL import Image
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        rgb = im.convert("RGB")
        assert len(rgb.getcolors(maxcolors=1 << 20)) > 50     # text, tables, the curves PNG
        # the curves image is drawn: its blue line pixels (C0 = #1f77b4) appear on screen
        assert any(abs(r - 31) < 30 and abs(g - 119) < 30 and abs(b - 180) < 30 and n > 20
                   for n, (r, g, b) in rgb.getcolors(maxcolors=1 << 20))
    dom = chromium(["--dump-dom", url], tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    for needle in ("Few-shot accuracy: measured vs paper", "76.8 ± 0.7%", "98.23 ± 1.12%",
                   "paper (Stewart &amp; Neftci 2022)", "0.2121", "0.00231",
                   "75.2 ± 1.3%", "76.8 ± 1.2%", "-1.6 pp", "97.0%", "60x", "not measured"):
        assert needle in text, needle


# --- the continual-learning section -------------------------------------------------------------
SHIPPED_CONTINUAL = Path(__file__).parent.parent / "checkpoints" / "double_digits" / \
    "continual_dd36.json"


def test_continual_section_shows_the_measured_rows_and_draws_the_curves(tmp_path):
    html = rp.build_report(tmp_path, rp.Inputs(continual=[SHIPPED_CONTINUAL])).read_text()
    sec = html[html.index('id="continual"'):]
    sec = sec[:sec.index("</section>")]
    # the shipped measurement (docs/onchip.md): label_only 97.1 / 94.9 / 91.0 / 86.8%, worst
    # gap -2.082
    for cell in ("deployed_label_only", "97.1%", "94.9%", "91.0%", "86.8%", "-2.082 pp",
                 "deployed_chip", "65.8%", "prototype", "88.8%", "5.46 ± 1.104 pp"):
        assert cell in sec, cell
    assert (tmp_path / "continual_0.png").stat().st_size > 20_000


def test_continual_json_with_a_short_curve_is_refused_by_name(tmp_path):
    bad = json.loads(SHIPPED_CONTINUAL.read_text())
    bad["rows"]["prototype"]["accuracy"] = bad["rows"]["prototype"]["accuracy"][:5]
    (tmp_path / "c.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="c.json.*rows.prototype.accuracy must be 36 numbers"):
        rp.build_report(tmp_path / "out", rp.Inputs(continual=[tmp_path / "c.json"]))


# --- the ablation section -----------------------------------------------------------------------
SHIPPED_ABLATION = Path(__file__).parent.parent / "checkpoints" / "ablation" / "ablation_demo.json"


def test_ablation_section_shows_every_row_of_the_shipped_json(tmp_path):
    html = rp.build_report(tmp_path, rp.Inputs(ablation=[SHIPPED_ABLATION])).read_text()
    sec = html[html.index('id="ablation"'):]
    sec = sec[:sec.index("</section>")]
    # the shipped measurement (docs/figures.md, "Ablation: what made theta0"), row by row
    for cell in ("random theta0 + rule", "37.3 ± 0.9%", "69.7 ± 0.7%", "-54.3 ± 1.0 pp",
                 "<td>2</td>", "stage 1 + rule", "91.6 ± 0.4%", "93.0 ± 0.4%", "<td>733</td>",
                 "MAML from random + rule", "78.0 ± 0.6%", "79.4 ± 0.6%", "-13.5 ± 0.6 pp",
                 "not logged (1580.5 s wall", "stage 1 + stage 2 + rule", "91.4 ± 0.4%",
                 "92.6 ± 0.4%", "-0.2 ± 0.3 pp", "<td>885</td>", "77.4 ± 0.7%",
                 "<td>stage 1, no MAML update</td>", "MAML (SGD inner loop) from random x5500",
                 "--init + MAML (SOEL inner loop) x100",
                 "mant 7, exp -2, theta 1.0, target 8/0, 8 passes",
                 "stage 1 + stage 2 with the deployed session inside + rule", "93.1 ± 0.4%",
                 "+0.0 ± 0.3 pp", "<td>1685</td>", "stage 1, longer + rule",
                 "95.3 ± 0.4%", "96.2 ± 0.3%", "+3.7 ± 0.5 pp", "<td>2177</td>",
                 "stage 1 + MAML (SOEL inner loop) x1", "95.8 ± 0.3%", "96.5 ± 0.3%",
                 "+4.3 ± 0.5 pp", "<td>3008</td>"):
        assert cell in sec, cell
    assert sec.count("<tr>") == 1 + 8                      # header, 7 rows, the raw input
    found = rp.default_inputs(SHIPPED_ABLATION.parents[1]).ablation
    assert SHIPPED_ABLATION in found


def test_ablation_json_without_a_deployed_accuracy_is_refused_by_name(tmp_path):
    bad = json.loads(SHIPPED_ABLATION.read_text())
    del bad["rows"][1]["deployed"]
    (tmp_path / "a.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match=r"a.json.*rows\[1\]\.deployed\.acc must be a fraction"):
        rp.build_report(tmp_path / "out", rp.Inputs(ablation=[tmp_path / "a.json"]))
    page = rp.build_report(tmp_path / "none", rp.Inputs()).read_text()
    assert 'id="ablation"' in page and "no <code>benchmarks/ablation.py --json</code>" in page
