"""The notifier's use cases: each opens its own transaction; routes and consumers call them."""
