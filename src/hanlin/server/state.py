"""What one running server holds: settings, the gateway, open knowledge bases, jobs, auth."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from hanlin.access.auth import Authenticator
from hanlin.config import Settings
from hanlin.knowledge.pool import KnowledgeBases
from hanlin.models.gateway import Gateway
from hanlin.server.jobs import JobManager


@dataclass(slots=True)
class ServerState:
    settings: Settings
    #: the settings ingestion jobs use: URL fetches follow ``server.allow_private_urls``
    writer_settings: Settings
    gateway: Gateway
    kbs: KnowledgeBases
    jobs: JobManager
    auth: Authenticator


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's state."""
    state: ServerState = request.app.state.hanlin
    return state
