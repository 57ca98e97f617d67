"""The Memory tab (gui/memory/tab.py) and the parts it shows: recall by distance first, then the sampled
measures under their controls, influence, the model-side measures, the probe and the heatmaps. The
*_data modules read the report (no Qt); the *_section, *_table and view_bar modules draw it."""

from .tab import MemoryTab

__all__ = ["MemoryTab"]
