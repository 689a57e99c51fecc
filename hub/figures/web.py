"""The figures in the hub's application: one FigureStore and one big-screen feed per process, the
figures' API, the console's pages and the hall's big screen (create_app calls ``install``)."""

from __future__ import annotations

from fastapi import FastAPI

from .screen import ScreenFeed
from .service import figure_store


def install(app: FastAPI) -> None:
    from ..routers import figures as figures_api
    from ..routers import figures_console, screen

    config = app.state.config
    figures = figure_store(app.state.store, config, app.state.desk_settings)
    app.state.figures = figures
    app.state.screen_feed = ScreenFeed(figures, config.figures.hall_name)
    app.include_router(figures_api.router)
    app.include_router(figures_console.router)
    app.include_router(screen.router)
