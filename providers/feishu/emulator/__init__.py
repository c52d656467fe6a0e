"""The feishu emulator."""
