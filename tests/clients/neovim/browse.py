"""The person's browser for the Neovim tests: the plugin's `open_url` runs this with the
sign-in URL; it completes the sign-in (tests/peers/oauth/browser.py) and exits 0 when the
loopback callback answered 200."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from peers.oauth.browser import authorize_in_browser  # noqa: E402


async def main(url: str) -> int:
    result = await authorize_in_browser(url)
    print(f"callback answered {result.status}")
    return 0 if result.status == 200 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
