"""Id limits: what our id columns hold."""

MAX_ID_LENGTH = 200  # our id columns; Langfuse allows 800, real SDK ids are 16–36 characters
MAX_ENVELOPE_ID = 800  # a Langfuse batch event's own id (only echoed back, never stored)


def valid_id(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH
