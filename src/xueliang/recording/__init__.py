"""Recording (录像): the platform's own recorder, its plans, index and retention."""
