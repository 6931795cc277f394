"""The lowest layer: checkpoint format, schedules, image conversion, paths, family registry."""
