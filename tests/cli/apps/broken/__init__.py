"""An application that fails to import."""

raise RuntimeError("the database URL is not set")
