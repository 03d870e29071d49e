"""The LCA: application connections, process control and child processes."""
