"""Shipped checkpoints. Installed, this package holds only what `metaloihi demo` needs,
demo/theta0.pt (pyproject's package-data); its log and evaluations stay in the repository."""
