"""Generative Studio: touch generative image models to learn how they work."""

__version__ = "0.1.0"
