"""The models that ship with the app (`--run pretrained`). A package so that the wheel carries it and
importlib.resources finds it (engine/core/resources.py); it holds no code."""
