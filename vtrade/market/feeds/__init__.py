"""Feeds: streaming readers that turn recorded files into timestamped market events."""
