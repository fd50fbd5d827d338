"""The paper's table: its five-way one-shot accuracies, quoted from the reference text, beside
the measured evaluations (the report's first section)."""
from __future__ import annotations

from metaloihi.report.markup import NOT_MEASURED, dataset_name, esc, pct, table

PAPER_LABEL = "paper (Stewart & Neftci 2022)"
MEASURED_LABEL = "measured"
PAPER_CITATION = ("K. M. Stewart and E. O. Neftci, Meta-learning spiking neural networks with "
                  "surrogate gradient descent, Neuromorph. Comput. Eng. 2 (2022) 044002")

# The paper's five-way one-shot accuracies, quoted exactly as printed in
# ../shared/reference/stewart-neftci-2022-meta-learning-snn.txt (Stewart & Neftci 2022):
#   Table 3 "One-shot five-way accuracy results" (validation = the meta-validation classes' test
#           data, test = the meta-test classes; mean over ten trials);
#   Table 4 "Comparison of meta-learning methods on the N-Omniglot dataset" (test only; the
#           paper's own row, 100 time steps; the rows of Li et al. are other work, left out);
#   Table 7 "One-shot five-way accuracy results with error-triggered synaptic plasticity"
#           (MAML SOEL, theta = 0.05). Its N-Omniglot row prints a single figure; the text
#           extraction does not say which column, and N-Omniglot is reported as test accuracy
#           elsewhere (Table 4), so it is read as test.
# All on real DVS recordings (Double N-MNIST, Double ASL DVS, N-Omniglot); the paper has no
# gesture figure. dataset = our registry name of the same construction.
PAPER = [
    {"table": "Table 3", "dataset": "double_nmnist", "algorithm": "MAML (SNN)",
     "val": "98.76 ± 1.05%", "test": "98.23 ± 1.12%"},
    {"table": "Table 3", "dataset": "double_nmnist", "algorithm": "MAML (CNN)",
     "val": "99.09 ± 0.53%", "test": "98.35 ± 1.26%"},
    {"table": "Table 3", "dataset": "double_nmnist", "algorithm": "FOMAML (SNN)",
     "val": "92.59 ± 1.0%", "test": "92.63 ± 0.74%"},
    {"table": "Table 3", "dataset": "double_asl_dvs", "algorithm": "MAML (SNN)",
     "val": "95.77 ± 0.88%", "test": "96.04 ± 2.31%"},
    {"table": "Table 3", "dataset": "double_asl_dvs", "algorithm": "MAML (CNN)",
     "val": "94.93 ± 0.92%", "test": "94.97 ± 1.63%"},
    {"table": "Table 3", "dataset": "double_asl_dvs", "algorithm": "FOMAML (SNN)",
     "val": "94.97 ± 1.12%", "test": "94.27 ± 0.6%"},
    {"table": "Table 4", "dataset": "nomniglot", "algorithm": "MAML (SNN), 100 time steps",
     "val": None, "test": "96.43 ± 0.66%"},
    {"table": "Table 7", "dataset": "double_nmnist", "algorithm": "MAML SOEL θ = 0.05",
     "val": "98.57 ± 1.13%", "test": "98.72 ± 0.20%"},
    {"table": "Table 7", "dataset": "double_asl_dvs", "algorithm": "MAML SOEL θ = 0.05",
     "val": "97.81 ± 0.58%", "test": "97.61 ± 0.96%"},
    {"table": "Table 7", "dataset": "nomniglot", "algorithm": "MAML SOEL θ = 0.05",
     "val": None, "test": "95.67 ± 2.70%"},
]



def accuracy_section(evals: list[dict]) -> str:
    rows = []
    for r in evals:
        task = (f"{r['ways']}-way " if r.get("ways") else "") + f"{r['shots']}-shot"
        split = r["split"] or "not recorded"
        if r["split"] and r.get("split_from_file"):
            split += " (file name)"
        acc = pct(r["acc"], r.get("ci95"))
        val, test = (acc, "—") if r["split"] == "val" else ("—", acc)
        rows.append(((MEASURED_LABEL, dataset_name(r["dataset"]), r["name"], task, split,
                      val, test, r.get("tasks", "—"), r["file"]), {"class": "measured"}))
    for p in PAPER:
        rows.append(((PAPER_LABEL, dataset_name(p["dataset"]), p["algorithm"], "5-way 1-shot",
                      "val / test", p["val"] or "not reported", p["test"],
                      "10 trials" if p["table"] == "Table 3" else "—", p["table"]),
                     {"class": "paper"}))
    ours = sorted({r["dataset"] for r in evals if r["dataset"]})
    shared = [d for d in ours if any(p["dataset"] == d for p in PAPER)]
    if not evals:
        note = f"Measured: {NOT_MEASURED} (no evaluation JSON given)."
    elif shared:
        note = ("Same data set as the paper for: " + ", ".join(dataset_name(d) for d in shared)
                + ". Other rows are on different data and not a like-for-like comparison.")
    else:
        note = ("The measured rows are on " + (", ".join(dataset_name(d) for d in ours)
                or "data sets not recorded in the files") + "; the paper reports none of "
                "these, so its rows (real DVS recordings) are context, not a like-for-like "
                "comparison. Embedded data sets are generated locally (gestures: procedural "
                "DVS gestures).")
    return (f'<section id="accuracy"><h2>Few-shot accuracy: measured vs paper</h2>'
            f"<p>{esc(note)} Ours: mean ± 95% confidence interval over the tasks; split demo = "
            "the five held-out demo classes (a subset of test). Paper: as printed in its "
            "tables (Table 3: mean over ten trials).</p>"
            + table(["source", "data set", "model", "task", "split", "meta-val classes",
                      "meta-test classes", "tasks", "from"], rows, "acc") + "</section>")

