"""metaloihi.datasets: event data, embedded few-shot data sets, real-format readers, tasks.

    from metaloihi.datasets import load_dataset, TaskSampler
    ds = load_dataset("gestures")                      # generated once, then cached
    task = TaskSampler(ds, "demo", ways=5, shots=1, queries=1, seed=0).sample()
    task.support_x.shape                               # [5, 100, 2, 32, 32] float32

Modules: events (event arrays, frames, tonic transforms), dvs (DVS emulator), store (frame
cache), framesets (FrameDataset, double/paired sets, splits), digits, gestures (+ catalog),
aedat/readers (published formats; their events are built by event_checks), paper_splits (the
paper's constructions), events_folder + recording_files + events_settings (the `events` data
set: your own recordings), tasks, show.
Submodules are imported lazily so `import metaloihi.datasets` stays light.
"""


def load_dataset(*args, **kwargs):
    from metaloihi.datasets.registry import load_dataset as _load
    return _load(*args, **kwargs)


def __getattr__(name):
    if name in ("TaskSampler", "Task", "sample_task"):
        from metaloihi.datasets import tasks
        return getattr(tasks, name)
    if name in ("FrameSpec", "EVENT_DTYPE", "to_frames", "make_events"):
        from metaloihi.datasets import events
        return getattr(events, name)
    raise AttributeError(name)
