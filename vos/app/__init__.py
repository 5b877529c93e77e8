"""``seggpt-vos app``: a local rotoscoping web app and the HTTP API editor plug-ins call.

- ``engine``: the one module that calls the video engine (sessions, frames, exports);
- ``jobs``: propagation jobs on one worker thread, with progress and cancel;
- ``registry``: the open sessions (bounded, oldest idle closed first) and their object names;
- ``paths``: paths given to the API, kept inside ``--root``;
- ``server``: the FastAPI application (``create_app``) and the page in ``static/``.

Importing this package imports neither torch nor the web framework.
"""
