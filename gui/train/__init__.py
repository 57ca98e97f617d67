"""The Train tab's parts: its settings form (fields built from TRAIN_SETTINGS) and the loss curves."""
