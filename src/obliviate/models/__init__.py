"""Load and save causal language models from spec strings (``loader``), encode records
(``encoding``), and how a model computes (``precision``)."""
