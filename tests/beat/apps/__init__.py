"""Apps that beat process tests run."""
