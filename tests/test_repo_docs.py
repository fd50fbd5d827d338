"""README.md and docs/*.md cannot drift from what the repository measured or what the CLI takes.

The rule the pages follow (docs/figures.md explains it to writers): a paragraph, table, list or
code block that carries a measured figure is preceded by a line
    <!-- source: checkpoints/x/y.json [more.json ...] -->      (JSON, .json.gz, .jsonl(.gz) or a
                                                                checkpoint's .pt record)
or  <!-- source: command: ./run cost B.h5 --json B.cost.json -->
and the block runs from there to the next blank line (outside a code fence) or heading.
This test proves:
  (a) every figure in a block under JSON sources is a value of those files, at the precision
      shown (97.8% matches 0.97812 or 97.81; 733 s matches 732.6);
  (b) no figure stands outside a sourced block (NOT_FIGURES lists the few phrases that look
      like figures and are not measurements);
  (c) every `./run CMD` / `metaloihi CMD` shown in code or a source comment names a command
      that exists and only options its --help lists; every `benchmarks/X.py` shown exists and
      defines the options used with it.
Fast: no Lava, no subprocess; the CLI's help comes from typer's CliRunner, once per command.
"""
from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Phrases that contain a figure-like number and are not measurements (versions, parameters of
# the published data sets, identifiers). Removed from a line before figures are looked for.
NOT_FIGURES = (
    "Python 3.10", "Python 3.11+", "Python >= 3.10", "Lava 0.10",     # versions
    "95% confidence", "95% CI",                                        # the interval reported
    "bins of 1 ms", "300 ms window", "100 ms per bin",                 # data set parameters
    "the paper's 98.23% (SNN MAML) and 98.72% (SOEL)",                 # quoted from the paper
)

SOURCE_RE = re.compile(r"^\s*<!--\s*source:\s*(?P<what>.*?)\s*-->\s*$")
FENCE_RE = re.compile(r"^\s*(```|~~~)(?P<lang>[\w+-]*)")
HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s")
INLINE_CODE_RE = re.compile(r"`[^`]*`")
LINK_TARGET_RE = re.compile(r"\]\([^)]*\)")
# a number; group unit is what follows it (a unit makes any number a figure; without one only
# a decimal is). "x" counts as a speed-up only glued to the number and not followed by a
# letter or digit (16x16 is a shape).
FIGURE_RE = re.compile(
    r"(?<![\w.^/])(?P<neg>[-−](?=\d))?(?P<num>\d+(?:,\d{3})*(?:\.\d+)*(?:[eE][-+]?\d+)?)"
    r"(?P<unit>x(?!\w|\.\d)|\s?%|\s?(?:pp|ms|µs|us|ns|s|min|h|µJ|uJ|mJ|pJ|nJ|J|GiB|MiB|KiB|"
    r"GB|MB|KB|kB|W)(?![\w/])|\s?(?:tasks|samples)/s)?")
# between two numbers of one chain ("97.8 / 97.8 / 99.0%", "46-56 s", "13.3 s / 12.7 s")
CHAIN_RE = re.compile(r"^\s*(?:/|-|–|to)\s*$")
SCALES = {"": (1, 100), "%": (1, 100), "pp": (1, 100), "x": (1,), "s": (1,),
          "ms": (1, 1e3), "µs": (1, 1e6), "us": (1, 1e6), "ns": (1, 1e9),
          "min": (1, 1 / 60), "h": (1, 1 / 3600),
          "µJ": (1, 1e6), "uJ": (1, 1e6), "mJ": (1, 1e3), "pJ": (1, 1e12), "nJ": (1, 1e9),
          "J": (1,), "GiB": (1, 2 ** -30), "MiB": (1, 2 ** -20), "KiB": (1, 2 ** -10),
          "GB": (1, 1e-9), "MB": (1, 1e-6), "KB": (1, 1e-3), "kB": (1, 1e-3), "W": (1,),
          "tasks/s": (1,), "samples/s": (1,)}
# a shell line in a code fence: its options are checked, only its trailing # comment is prose
SHELL_RE = re.compile(r"^\s*(?:\$\s+)?(?:\./run|metaloihi|\.venv/bin/python|python3?|torchrun|"
                      r"pip|for\b|do\b|done\b|[A-Za-z_]+=\S*|/usr/bin/time|sudo|apt-get|cd\b)")
COMMAND_RE = re.compile(r"(?:^|(?<=[\s;&|(`]))(?P<prog>\./run|metaloihi)[ \t]+(?P<rest>[^;&|`#]*)")
BENCH_RE = re.compile(r"(?<![\w/])(?P<script>benchmarks/[\w]+\.py)(?P<rest>[^;&|`#]*)")
OPTION_RE = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9_-]*")


@dataclass
class Figure:
    text: str
    value: float
    decimals: int       # places shown: the precision compared at
    exponent: int       # of scientific notation (0 otherwise)
    unit: str


@dataclass
class Block:
    sources: list       # JSON paths (repository-relative)
    commands: list      # "command: ..." sources
    line: int           # of the source comment


@dataclass
class Problems:
    items: list = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


# --- figures ------------------------------------------------------------------------------------
def figures_in(text: str) -> list[Figure]:
    """The figures of one line of prose: numbers with a unit, decimals, and the plain numbers of
    a chain that ends in a unit ("1111 / 274 tasks/s")."""
    for phrase in NOT_FIGURES:
        text = text.replace(phrase, " ")
    text = LINK_TARGET_RE.sub("]", INLINE_CODE_RE.sub(" ", text))
    found = []
    for m in FIGURE_RE.finditer(text):
        num = m.group("num")
        after = text[m.end("num"):m.end("num") + 2]
        if num.count(".") > 1 or after.startswith((".x", ".*")):
            continue                                 # a version: 0.10.0, 2.3.x
        unit = (m.group("unit") or "").strip()
        mant, _, exp = num.replace(",", "").lower().partition("e")
        decimals = len(mant.partition(".")[2])
        value = float(mant) * 10 ** int(exp or 0) * (-1 if m.group("neg") else 1)
        found.append((m, Figure(m.group(0).strip(), value, decimals, int(exp or 0), unit)))
    out = []
    for k, (m, fig) in enumerate(found):
        chained = False
        for m2, fig2 in found[k + 1:]:           # a plain integer chained to a figure with unit
            if not CHAIN_RE.match(text[m.end():m2.start()]):
                break
            if fig2.unit:
                chained = True
                break
            m = m2
        if fig.unit or fig.decimals or chained:
            out.append(fig)
    return out


def json_values(path: Path) -> list[float]:
    """Every number in a JSON file (walked recursively; numbers inside strings too)."""
    return list(_values_cached(str(path)))


@lru_cache(maxsize=None)
def _values_cached(path: str) -> tuple:
    p = Path(path)
    name = p.name
    if name.endswith(".pt"):
        import torch
        data = torch.load(p, weights_only=True, map_location="cpu")
    else:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(p, "rt") as fh:
            raw = fh.read()
        if ".jsonl" in name:
            data = [json.loads(ln) for ln in raw.splitlines() if ln.strip()]
        else:
            data = json.loads(raw)
    out: list[float] = []

    def walk(x):
        if isinstance(x, bool) or x is None:
            return
        if isinstance(x, (int, float)):
            if math.isfinite(x):
                out.append(float(x))
        elif isinstance(x, str):
            out.extend(float(s) for s in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", x))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif hasattr(x, "numel") and x.numel() == 1:      # a scalar tensor of a checkpoint
            walk(float(x))
    walk(data)
    return tuple(out)


def matches(fig: Figure, values) -> bool:
    tol = 0.5 * 10.0 ** (fig.exponent - fig.decimals) * (1 + 1e-9)
    for scale in SCALES.get(fig.unit, (1,)):
        for v in values:
            got = v * scale
            if abs(got - fig.value) <= tol or abs(abs(got) - abs(fig.value)) <= tol:
                return True
    return False


# --- commands -----------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _cli():
    import typer
    from metaloihi.cli import app
    return app, typer.main.get_command(app)


@lru_cache(maxsize=None)
def cli_options(path: tuple) -> frozenset:
    """The --options one command's --help lists (typer's CliRunner, in-process)."""
    from typer.testing import CliRunner
    app, _ = _cli()
    res = CliRunner().invoke(app, [*path, "--help"], terminal_width=240,
                             env={"COLUMNS": "240"})   # TERMINAL_WIDTH would stick: typer reads it once, at import
    assert res.exit_code == 0, (path, res.output)
    return frozenset(OPTION_RE.findall(res.output))


def check_cli_command(prog: str, rest: str, where: str, problems: Problems) -> None:
    words = rest.split()
    if not words or words[0].startswith("-") and prog == "./run":
        return                      # `./run --help`: the bare entry point
    if prog == "./run" and words[0] == "test":
        return                      # pytest's own options follow
    _, group = _cli()
    path: list[str] = []
    cmd = group
    for w in words:
        sub = getattr(cmd, "commands", None)
        if sub is None or w.startswith("-"):
            break
        if w not in sub:
            if not path and (w.startswith(("<", "$", "{")) or w.upper() == w):
                return              # a placeholder (`metaloihi CMD`), not a command
            problems.add(where, f"`{prog} {' '.join(path + [w])}`: no such command")
            return
        path.append(w)
        cmd = sub[w]
    if hasattr(cmd, "commands"):
        return                      # a group named without its subcommand (`./run data`)
    known = cli_options(tuple(path))
    for opt in OPTION_RE.findall(rest):
        if opt not in known:
            problems.add(where, f"`{prog} {' '.join(path)}` has no option {opt} "
                                f"(its --help lists {', '.join(sorted(known))})")


@lru_cache(maxsize=None)
def script_options(path: str) -> frozenset:
    text = Path(path).read_text()
    return frozenset(re.findall(r"add_argument\(\s*[\"'](--[\w-]+)", text))


def check_code(text: str, where: str, root: Path, problems: Problems) -> None:
    """Commands and benchmark scripts shown in a line of code or a source comment."""
    for m in COMMAND_RE.finditer(text):
        check_cli_command(m.group("prog"), m.group("rest"), where, problems)
    for m in BENCH_RE.finditer(text):
        script = root / m.group("script")
        if not script.is_file():
            problems.add(where, f"{m.group('script')} does not exist")
            continue
        known = script_options(str(script))
        for opt in OPTION_RE.findall(m.group("rest")):
            if opt not in known:
                problems.add(where, f"{m.group('script')} defines no option {opt}")


# --- one page -----------------------------------------------------------------------------------
def check_page(text: str, name: str, root: Path = ROOT) -> list[str]:
    """All problems of one Markdown page (empty: it passes)."""
    problems = Problems()
    block: Block | None = None
    fence: str | None = None            # language of the open code fence, None outside one
    continued = False                   # the previous shell line ended with a backslash
    logical = ""                        # a shell command over continuation lines, joined
    for k, line in enumerate(text.splitlines(), 1):
        where = f"{name}:{k}"
        src = SOURCE_RE.match(line)
        if src and fence is None:
            what = src.group("what")
            if block is None or block.line != k - 1:
                block = Block([], [], k)
            block.line = k
            if what.startswith("command:"):
                block.commands.append(what[len("command:"):].strip())
                check_code(what[len("command:"):], where, root, problems)
            else:
                for rel in what.split():
                    if not (root / rel).is_file():
                        problems.add(where, f"source {rel} does not exist")
                    else:
                        block.sources.append(rel)
                if not what.split():
                    problems.add(where, "empty source comment")
            continue
        f = FENCE_RE.match(line)
        if f:
            fence = None if fence is not None else (f.group("lang") or "text")
            continue
        if fence is None and (not line.strip() or HEADING_RE.match(line)):
            block = None
        if fence is not None:
            shell = continued or bool(SHELL_RE.match(line))
            continued = shell and line.rstrip().endswith("\\")
            logical += " " + line.rstrip().rstrip("\\")
            if not continued:
                check_code(logical, where, root, problems)
                logical = ""
            if fence in ("python", "py", "toml"):
                continue                          # code, not prose
            prose = line.partition(" #")[2] if shell else line
        else:
            for code in INLINE_CODE_RE.findall(line):
                check_code(code.strip("`"), where, root, problems)
            prose = line
        figs = figures_in(prose)
        if not figs:
            continue
        if block is None:
            problems.add(where, f"figure {figs[0].text!r} has no source (put a "
                                "`<!-- source: ... -->` line before its paragraph)")
            continue
        if block.commands and not block.sources:
            continue                              # produced by the command shown
        values = [v for rel in block.sources for v in json_values(root / rel)]
        for fig in figs:
            if not matches(fig, values):
                problems.add(where, f"figure {fig.text!r} is not in "
                                    f"{' '.join(block.sources)}")
    return problems.items


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


# --- the pages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_figure_is_sourced_and_every_command_exists(page):
    problems = check_page(page.read_text(), str(page.relative_to(ROOT)))
    assert not problems, "\n" + "\n".join(problems)


def slugs(page: Path) -> set:
    """The anchors GitHub gives a page's headings."""
    out = set()
    for line in page.read_text().splitlines():
        if HEADING_RE.match(line):
            title = line.strip().lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_the_readme_is_short_and_every_link_and_anchor_exists():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    for page in pages():
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            dest = (page.parent / target).resolve() if target else page
            assert dest.exists(), f"{page.name}: link to {target} (missing)"
            if anchor and dest.suffix == ".md":
                assert anchor in slugs(dest), f"{page.name}: no heading #{anchor} in {target}"


def test_the_pages_the_readme_promises_exist():
    for name in ("training", "deployment", "sim", "onchip", "cost", "data", "reliability",
                 "figures", "architecture"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name


# --- the checker itself can fail ----------------------------------------------------------------
@pytest.fixture()
def repo(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"acc": 0.97812, "ci95": 0.0027,
                                                 "rows": [{"name": "x (2.9 min)", "s": 732.6}]}))
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "b.py").write_text('ap.add_argument("--tasks", type=int)\n')
    return tmp_path


def test_the_parser_finds_figures_and_leaves_non_figures():
    got = [(f.text, f.unit) for f in figures_in(
        "97.8 ± 0.3% on 600 tasks, 1301x, 16x16 input, 2 cores, 5-way 1-shot, 8-bit, "
        "lava-nc 0.10.0 on Python 3.10, 733 s, `--head-range 0.5`, 1111 / 274 tasks/s")]
    assert got == [("97.8", ""), ("0.3%", "%"), ("1301x", "x"), ("733 s", "s"),
                   ("1111", ""), ("274 tasks/s", "tasks/s")]


def test_a_figure_matches_its_json_at_the_precision_shown(repo):
    good = ("<!-- source: m.json -->\n"
            "deployed 97.8 ± 0.3% (733 s; 2.9 min); 97.81% and 97.812%\n")
    assert check_page(good, "good.md", repo) == []
    bad = "<!-- source: m.json -->\ndeployed 97.9% over 600 tasks\n"
    assert check_page(bad, "bad.md", repo) == ["bad.md:2: figure '97.9%' is not in m.json"]
    too_precise = "<!-- source: m.json -->\ndeployed 97.8123%\n"
    assert check_page(too_precise, "p.md", repo) == [
        "p.md:2: figure '97.8123%' is not in m.json"]


def test_a_figure_without_a_source_fails_and_the_block_ends_at_a_blank_line(repo):
    page = "<!-- source: m.json -->\n97.8% here\n\nand 91.2% there\n"
    assert check_page(page, "p.md", repo) == [
        "p.md:4: figure '91.2%' has no source (put a `<!-- source: ... -->` line before its "
        "paragraph)"]
    heading = "<!-- source: m.json -->\n97.8% here\n## Next\n97.8% again\n"
    assert len(check_page(heading, "h.md", repo)) == 1
    missing = "<!-- source: nope.json -->\n97.8%\n"
    assert check_page(missing, "m.md", repo)[0] == "m.md:1: source nope.json does not exist"


def test_a_command_source_accepts_its_figures_but_its_options_are_checked(repo):
    ok = "<!-- source: command: ./run cost B.h5 --tasks 10 --json B.json -->\n| a | 31.7 µJ |\n"
    assert check_page(ok, "ok.md", repo) == []
    bad = "<!-- source: command: ./run cost B.h5 --no-such-option 3 -->\n31.7 µJ\n"
    problems = check_page(bad, "bad.md", repo)
    assert len(problems) == 1 and "has no option --no-such-option" in problems[0]


def test_unknown_commands_options_and_scripts_fail(repo):
    page = ("```\n"
            "./run demo --backend sim\n"
            "./run fit-soel b.h5 --dataset double_nmnist --root /data/N-MNIST\n"
            "./run train --config demo --resume   # continue a run\n"
            "./run teleport --now\n"
            "metaloihi export --checkpoint c.pt --bogus\n"
            ".venv/bin/python benchmarks/b.py --tasks 3 --lava 2\n"
            ".venv/bin/python benchmarks/none.py\n"
            "```\n"
            "Inline: `metaloihi data show gestures --colour red`.\n")
    problems = check_page(page, "p.md", repo)
    assert [p.split(": ", 1)[0] for p in problems] == ["p.md:5", "p.md:6", "p.md:7", "p.md:8",
                                                       "p.md:10"]
    assert "no such command" in problems[0] and "--bogus" in problems[1]
    assert "defines no option --lava" in problems[2] and "does not exist" in problems[3]
    assert "--colour" in problems[4]
