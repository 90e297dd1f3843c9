"""The benchmark's one error type."""


class BenchmarkError(Exception):
    """A user mistake or missing input that stops the benchmark; the message is meant for the user."""
