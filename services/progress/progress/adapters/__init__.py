"""Progress adapters: files it renders (circulars)."""
