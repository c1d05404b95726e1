"""Log filter that rewrites anything shaped like a Lookglass secret key to its display form."""

import logging
import re

SECRET_PATTERN = re.compile(r"sk-lg-[A-Za-z0-9_\-]{4,}?([A-Za-z0-9_\-]{4})(?![A-Za-z0-9_\-])")
BASIC_PATTERN = re.compile(r"(?i)(authorization:?\s*(?:basic|bearer)\s+)[A-Za-z0-9+/=._\-]+")


def redact(text: str) -> str:
    text = SECRET_PATTERN.sub(lambda m: f"sk-lg-…{m.group(1)}", text)
    return BASIC_PATTERN.sub(lambda m: f"{m.group(1)}[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug; let logging report it
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
