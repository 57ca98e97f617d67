"""music stage."""
