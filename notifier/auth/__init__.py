"""Passwords, tokens, and the FastAPI dependencies that join them to users."""
