"""API routers, thin: validation in ``schemas``, rules in ``echosclero.clinic``, storage in ``store``."""
