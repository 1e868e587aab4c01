"""Shared plumbing: input validation, random generators, thread control, typing aliases.

Nothing here imports numba or torch.
"""
