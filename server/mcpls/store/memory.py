"""A `Store` in memory, for tests that need none of the keychain, the files or the
cross-process lock; one process, one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mcpls.errors import StorageFailed
from mcpls.store.records import ClientRegistration, TokenSet


class MemoryStore:
    """Everything in dictionaries; the lock is an asyncio lock per server."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[str, str], TokenSet] = {}
        self.registrations: dict[tuple[str, str], ClientRegistration] = {}
        self.secrets: dict[str, str] = {}
        self.state: dict[str, str] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def load_tokens(self, resource: str, issuer: str) -> TokenSet | None:
        return self.tokens.get((resource, issuer))

    async def save_tokens(self, tokens: TokenSet) -> None:
        self.tokens[(tokens.resource, tokens.issuer)] = tokens

    async def delete_tokens(self, resource: str, issuer: str) -> None:
        self.tokens.pop((resource, issuer), None)

    async def load_registration(self, issuer: str, redirect_uri: str) -> ClientRegistration | None:
        return self.registrations.get((issuer, redirect_uri))

    async def save_registration(self, registration: ClientRegistration, redirect_uri: str) -> None:
        self.registrations[(registration.issuer, redirect_uri)] = registration

    async def delete_registration(self, issuer: str, redirect_uri: str) -> None:
        self.registrations.pop((issuer, redirect_uri), None)

    async def load_secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    async def save_secret(self, name: str, value: str) -> None:
        self.secrets[name] = value

    async def delete_secret(self, name: str) -> None:
        self.secrets.pop(name, None)

    async def load_state(self, name: str) -> str | None:
        return self.state.get(name)

    async def save_state(self, name: str, value: str) -> None:
        self.state[name] = value

    async def delete_state(self, name: str) -> None:
        self.state.pop(name, None)

    @contextlib.asynccontextmanager
    async def locked(
        self, resource: str, issuer: str, *, timeout: float = 30.0
    ) -> AsyncIterator[None]:
        lock = self._locks.setdefault((resource, issuer), asyncio.Lock())
        try:
            async with asyncio.timeout(timeout):
                await lock.acquire()
        except TimeoutError:
            raise StorageFailed(f"the sign-in lock for {resource} was held too long") from None
        try:
            yield
        finally:
            lock.release()
