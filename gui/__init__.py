"""The desktop app: a thin Qt layer over engine/ (docs/design.md section 1). Only gui/ imports Qt."""
