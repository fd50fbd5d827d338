"""The data sets' names, and nothing else: what the CLI's help lists without importing the
loaders (`metaloihi export` must not load data set code). registry.py loads them by name."""

EMBEDDED = ("digits", "double_digits", "gestures")          # generated locally, cached
REAL = ("nmnist", "double_nmnist", "dvs_gesture", "asl_dvs", "double_asl_dvs", "nomniglot")
OWN = ("events",)       # a user's own recordings: one subfolder per class (events_folder.py)
