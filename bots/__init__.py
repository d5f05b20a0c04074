"""Channel adapters (console, Slack, Telegram) and the CLI. Adapters only translate."""
