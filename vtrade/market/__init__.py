"""Market: order books and the feeds that rebuild them. Pure domain code, no I/O beyond reading files."""
