"""labflow: anti-CD38 lab-interference workflow service (decision support)."""

__version__ = "0.1.0"
