"""What every stream app shares: Quix Streams set up the platform's way."""
