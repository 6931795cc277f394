"""One folder per model family; each ``__init__`` holds the family descriptor (FAMILY)."""
