"""Stage 9, evaluation: the protocol of docs/design.md section 5 over a run, the report folder and its plots,
report.json read back strictly."""
