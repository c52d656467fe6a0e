"""calbridge's feishu provider plugin."""
