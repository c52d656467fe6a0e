"""calbridge's built-in provider plugins, each loaded through the ``calbridge.providers`` entry points, and
their emulators (``<provider>.emulator``), loaded through ``calbridge.emulators``."""
