"""The SCS: HA pair rules, the server that applies them, and the management endpoint."""
