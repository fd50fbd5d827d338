"""The `metaloihi` command line (console script `metaloihi.cli:main`, `python -m metaloihi`).

One module per command group; importing them registers their commands on `app`, in the order
`metaloihi --help` lists them:
  app.py     the typer app, `main`, the exit-code guard (`guarded`), `version`
  options.py the options several commands share (--root, --device), defined once
  data.py    data show
  demo.py    demo
  bridge.py  fit-soel, bundle validate, export
  chip.py    deploy, adapt
  train.py   train, evaluate
  report.py  report
  cost.py    cost
  continual.py  continual
  nir_import.py import (an NIR graph onto Loihi 2)
  attach.py  attach-head
The commands parse options and print; the work is done by the stages they call."""
from metaloihi.cli.app import _guarded, app, guarded, main
from metaloihi.cli import data, demo, bridge, chip, train, report, cost  # noqa: F401,E402 - registers
from metaloihi.cli import continual  # noqa: F401,E402 - registers `continual`
from metaloihi.cli import sim  # noqa: F401,E402 - registers `sim`
from metaloihi.cli import attach  # noqa: F401,E402 - registers `attach-head`
from metaloihi.cli import nir_import  # noqa: F401,E402 - registers `import`

__all__ = ["app", "guarded", "main"]
