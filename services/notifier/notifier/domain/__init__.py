"""The notifier's rules, free of I/O: escalation policies and their planner, working hours,
alert lifecycle, delivery rules, contacts, phone numbers, SMS parts, quoting of notes."""
