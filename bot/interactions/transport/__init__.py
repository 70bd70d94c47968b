"""Getting things onto Discord: the status message, deliveries, files, acknowledgements."""
