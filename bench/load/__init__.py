"""The whole-bot load benchmark: the real bot process against the fakes in their own processes."""
