"""The base layer: what every other layer needs and nothing else (errors and the CLI's exit-code
contract, bounds and the one checker of values against them, atomic file writes, the lazy Lava
loader). Imports only the standard library and numpy."""
