"""Helpers shared by the tests and benchmarks/ (not part of the library): random networks with
calibrated activity (random_net) and running networks in Lava to compare with sim/ (lava_run).
Tests import them as `helpers.*` (pytest puts tests/ on sys.path); benchmarks insert tests/."""
