"""The repositories: one per table or concern, over one `Database`."""
