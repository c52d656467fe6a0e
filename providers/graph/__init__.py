"""calbridge's graph provider plugin."""
