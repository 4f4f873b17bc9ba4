"""premigrate: apply pending SQL migrations before the application starts."""

__version__ = "0.1.0"
