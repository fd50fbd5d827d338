"""Helpers shared by the tests and benchmarks/ (not part of the library): random networks with
calibrated activity (random_net), running networks in Lava to compare with sim/ (lava_run), and
subprocesses that cannot hang a test (bounded: a timeout on every one, a free port for torchrun).
Tests import them as `helpers.*` (pytest puts tests/ on sys.path); benchmarks insert tests/."""
