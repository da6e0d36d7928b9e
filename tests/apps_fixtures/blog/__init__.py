"""An app without apps.py: it gets a plain AppConfig."""
