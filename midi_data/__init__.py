"""The bundled corpus: public-domain folk tunes as MIDI files, their manifest.csv and SOURCES.md, and
their tokenized form (tokenized.npz/.json). A package so that the wheel carries it and
importlib.resources finds it (engine/core/resources.py); it holds no code."""
