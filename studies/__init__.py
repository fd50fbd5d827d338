"""Cross-stage studies: measurements that need several stages at once (the deployment gap from
float to fixed point to Lava, fitting the on-chip rule where it runs, statistics). Above every
stage, below the face (CLI, demo, report)."""
