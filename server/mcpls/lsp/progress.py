"""Work-done progress for long operations (the sign-in): begin, report, end."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer


class Progress:
    """One progress bar in the editor; silent where the editor has none."""

    def __init__(self, server: LanguageServer | None, token: str | int | None) -> None:
        self._server = server
        self.token = token

    @classmethod
    async def start(cls, server: LanguageServer, token: object, title: str) -> Progress:
        """Use the editor's `workDoneToken`, else create one if the editor supports it."""
        if not isinstance(token, str | int) or isinstance(token, bool):
            window = server.client_capabilities.window
            if window is None or not window.work_done_progress:
                return cls(None, None)
            token = str(uuid.uuid4())
            await server.work_done_progress.create_async(token)
        progress = cls(server, token)
        if progress._server is not None:
            progress._server.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title=title, cancellable=True)
            )
        return progress

    def report(self, message: str) -> None:
        if self._server is not None and self.token is not None:
            self._server.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=message)
            )

    def end(self) -> None:
        if self._server is not None and self.token is not None:
            self._server.work_done_progress.end(self.token, types.WorkDoneProgressEnd())
            self.token = None
