-- One database per service: no service reads another's tables.
CREATE DATABASE duban_registry;
CREATE DATABASE duban_progress;
CREATE DATABASE duban_notifier;
