"""Evaluation metrics for unlearning: TOFU's aggregate statistics and their building blocks."""
