"""`make bench`: Notifier measured side by side with the tutorial FastAPI server."""
