"""Reports drawn for people (charts): Discord-free, so they can be rendered and tested alone."""
