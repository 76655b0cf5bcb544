"""The harness the scenarios share: processes, load generators, the broker, results and plots."""
