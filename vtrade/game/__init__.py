"""The game: missions, progression and leaderboards (pure domain, DESIGN.md §8)."""
