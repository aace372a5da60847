"""Residents (居民) in the phone app: invitation codes of a village or compound, joining with
one, and what a resident may watch (the resident-visible cameras of that place only)."""
