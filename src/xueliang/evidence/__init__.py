"""Evidence (证据): exports of recordings with a signed manifest, and holds that keep them."""
