"""Stage 1, core: what every stage uses: errors, the settings tables and validation, atomic writes, devices
and threads, child processes, the run lock, where data lives, the one JSON conversion. Imports no other stage."""
