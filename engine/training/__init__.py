"""Stage 5, training: settings, run planning and locks, the loop and its worker processes, early stopping,
checkpoints (safetensors + JSON, never pickle), data-parallel, counted FLOPs."""
