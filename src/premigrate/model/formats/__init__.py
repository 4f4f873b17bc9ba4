"""Readers of other tools' migration folders: one module per tool's format, each pure (files in, values out)."""
