"""The REST API and web page (``lookalike serve``): FastAPI + uvicorn, thin over the Library.

Importing this package does not import FastAPI; ``lookalike.server.app`` does.
"""
