"""In-memory column cache for dashboard queries (placeholder until built)."""


def build_columnar(ds, settings):
    return None
