"""The registry's use cases: each opens one transaction and queues on the outbox what it
announces. The HTTP routes and the command line call them."""
