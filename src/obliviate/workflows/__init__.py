"""One module per command: each a function a reader can follow top to bottom.

``obliviate.api`` re-exports them as the documented Python API; ``obliviate.cli`` is a thin
command line over them.
"""
