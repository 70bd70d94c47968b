"""The job engine: submit → poll → download, independent of Discord."""
