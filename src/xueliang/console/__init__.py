"""What the console keeps on the platform for its users (patrols)."""
