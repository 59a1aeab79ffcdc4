"""tests/io's own helpers (``mutation``) are imported as plain modules."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
