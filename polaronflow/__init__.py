"""polaronflow."""
