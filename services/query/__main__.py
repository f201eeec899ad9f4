"""``python -m services.query --host 127.0.0.1 --port 8080``: the local server."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from services.query.answer.parts import build_query_deps
from services.query.transports.server import create_app
from shared.settings import Settings, load_settings


def build_app(settings: Settings) -> web.Application:
    deps = build_query_deps(settings)
    app = create_app(settings, deps)

    async def close_parts(_: web.Application) -> None:
        await deps.close()

    app.on_cleanup.append(close_parts)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.query", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level)
    web.run_app(build_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
