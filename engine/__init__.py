"""Melody Memory's engine: corpus, models, training, generation and metrics. Never imports Qt."""
