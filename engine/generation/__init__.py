"""Stage 6, generation: the one decoding loop (sample_tokens) and generate()."""
