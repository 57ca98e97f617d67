"""Stage 2, music: notes and melodies, tokens, MIDI in and out, the 24 scales, audio rendering."""
