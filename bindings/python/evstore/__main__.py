"""``python -m evstore worker STORE --app module:store`` (evstore.worker)."""
import sys

from .worker import main

sys.exit(main())
