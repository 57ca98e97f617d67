"""Stage 3, data: folders of MIDI files become a corpus (duplicates, splits, skipped files with reasons), its
cache, training batches and primers."""
