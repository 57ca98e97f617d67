"""The Listen tab's parts: its rows, the keys that play them and the originality meter (issue 27)."""
