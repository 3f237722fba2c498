"""Where the tests find the project's shared data: ``../shared/data`` beside the checkout."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MP20 = SHARED_DATA / "mp_20"
