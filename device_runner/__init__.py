"""Core ML builds, on-device timing backends and speed history (issue 5)."""
