"""The seed's layout: apps.py, models.py, signals.py."""
