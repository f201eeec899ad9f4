"""Suite-wide pytest configuration."""

pytest_plugins = ["tests.servers"]
