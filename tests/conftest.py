"""Suite-wide pytest configuration."""

pytest_plugins = ["tests.servers", "tests.aws_doubles"]
