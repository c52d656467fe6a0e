"""The calbridge command line."""
