"""The google emulator."""
