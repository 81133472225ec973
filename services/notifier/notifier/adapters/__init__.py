"""The notifier's I/O other than SQL: delivery channels (SMTP, SMS providers, WeCom), message
templates, escalation policy files, and the local SMS sink for demos."""
