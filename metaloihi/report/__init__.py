"""`metaloihi report`: one self-contained HTML page of results (inline CSS, no scripts, nothing
fetched) with its PNGs next to it, from what the pipeline wrote.

  readers.py       the input files (training logs, evaluations, deployment gap, speed), read and
                   validated; GAP_FORMAT and SPEED_FORMAT; `Inputs`, `default_inputs`
  bundles.py       what the page shows of a deployment bundle
  paper_table.py   the paper's accuracies, quoted from the reference text, beside the measured ones
  figures.py       the meta-training curves PNG
  markup.py        escaping and table helpers shared by the sections
  cost.py          the Loihi 2 resource and cost section
  continual.py     the continual-learning section (`metaloihi continual --json` files)
  ablation.py      the ablation section: what made theta0 (benchmarks/ablation.py --json files)
  page.py          the sections and `build_report`, which writes index.html
"""
from metaloihi.report.bundles import bundle_summary
from metaloihi.report.figures import curves_figure, run_label
from metaloihi.report.page import build_report
from metaloihi.report.paper_table import PAPER, PAPER_CITATION
from metaloihi.report.readers import (DEFAULT_GLOBS, GAP_FORMAT, SPEED_FORMAT, Inputs,
                                      default_inputs, read_eval, read_gap, read_log, read_speed)

__all__ = ["Inputs", "default_inputs", "build_report", "read_log", "read_eval", "read_gap",
           "read_speed", "bundle_summary", "curves_figure", "run_label", "PAPER",
           "PAPER_CITATION", "DEFAULT_GLOBS", "GAP_FORMAT", "SPEED_FORMAT"]
