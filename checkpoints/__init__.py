"""Shipped checkpoints. Installed, this package holds only what `metaloihi demo` needs,
demo/theta0.pt and demo/bundle.h5, the bundle it deploys (pyproject's package-data); their log
and evaluations stay in the repository."""
