"""A fixture app with every kind of receiver, for ``tocsin signals``, ``check``
and ``graph``: ``tocsin -A inspected ...`` run from tests/cli/apps."""
