"""The one place settings are read from the environment (and from an optional `.env` file)."""

from pathlib import Path

import environ

env = environ.Env()
_dotenv = Path(__file__).resolve().parent.parent / ".env"
if _dotenv.exists():
    environ.Env.read_env(str(_dotenv), overwrite=False)
