"""A job's life, independent of Discord: journaled, submitted, polled, downloaded, delivered."""
