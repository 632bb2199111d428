"""A $BROWSER for the proxy tests: does with a sign-in page what a person would
(tests/peers/oauth/browser.py), and exits 0 when the client's callback accepted it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for `peers`

from peers.oauth.browser import authorize_in_browser


def main() -> int:
    """Open `argv[1]`; exit status 0 when the redirect URI answered 200."""
    result = asyncio.run(authorize_in_browser(sys.argv[1]))
    return 0 if result.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
