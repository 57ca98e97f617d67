"""Melody Memory's engine, cut into stage packages in the order the data flows (core, music, data, models,
training, generation, metrics, memory, evaluation, bench; docs/architecture.md). Never imports Qt."""
