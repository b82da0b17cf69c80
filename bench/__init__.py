"""`make bench`: what the gateway adds to a request, measured against the simulator (issue #6)."""
