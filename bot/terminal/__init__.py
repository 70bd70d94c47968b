"""Terminal front ends: the command line and `generate`."""
