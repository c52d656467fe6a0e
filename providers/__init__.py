"""calbridge's built-in provider plugins, each loaded through the ``calbridge.providers`` entry points."""
