"""What `make demo` runs (filled in as capabilities land)."""

print("multilinear demo: nothing to show yet")
