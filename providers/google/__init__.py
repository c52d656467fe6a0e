"""calbridge's google provider plugin."""
