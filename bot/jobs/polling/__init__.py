"""When to poll a task, learned from how long jobs take."""
