"""Domain errors that services raise and the API turns into HTTP answers (see main.py)."""


class NotFound(Exception):
    """The patient, message, requirement, subscription or delivery does not exist (404)."""


class Conflict(Exception):
    """The request contradicts the state of the record (409)."""
