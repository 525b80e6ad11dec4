"""HTTP: the aiohttp application, its routes, handlers and middlewares."""
