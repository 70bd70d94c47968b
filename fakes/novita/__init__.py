"""A spec-faithful mock of Novita's async API with fault injection; `server.MockNovita` is the entry
point (`python -m bot mock-novita` runs it alone)."""
