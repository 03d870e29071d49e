"""The scenario harness: scenario files, running them against the emulator, and results."""
