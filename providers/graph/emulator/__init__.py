"""The graph emulator."""
