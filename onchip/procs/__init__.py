"""Our Lava processes and their models, alone in this folder: Lava searches a process's
folder for models and imports every module there."""
