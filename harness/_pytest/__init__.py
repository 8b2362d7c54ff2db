"""The pytest plugin's parts (``harness.pytest_plugin`` is the entry point). Each module is
imported only when a test uses what it provides, so pytest runs that do not use the harness
pay nothing for it."""
