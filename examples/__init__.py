"""Runnable examples; ``make demo`` runs :mod:`examples.shop`."""
