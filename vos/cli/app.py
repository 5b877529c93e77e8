"""``seggpt-vos app``: the local rotoscoping page and the HTTP API editor plug-ins call (``vos.app``).

Registration imports neither torch nor the web framework; ``run`` does.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from . import arguments as types
from .commands import add_model_args, add_propagation_args


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_app(args: argparse.Namespace) -> int:
    import uvicorn

    from seggpt_core.errors import InputError

    from ..app.server import AppSettings, create_app
    from .commands import load_predictor, propagation_config

    root = args.root.resolve()
    if not root.is_dir():
        raise InputError(f"{args.root}: --root must be an existing folder")
    if args.max_sessions < 1 or args.max_upload_mb < 1:
        raise InputError("--max-sessions and --max-upload-mb must be >= 1")
    predictor = load_predictor(args)
    settings = AppSettings(root=root, max_sessions=args.max_sessions, max_upload_bytes=args.max_upload_mb << 20,
                           propagation=propagation_config(args))
    app = create_app(predictor, settings)
    if not is_loopback(args.host):
        print(f"WARNING: serving on {args.host}: anyone who can reach this address can read the videos under {root} "
              "and write exports into it; there is no login. Use --host 127.0.0.1 unless you mean it.")
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"seggpt-vos app: http://{host}:{args.port}/  (API docs: /docs; root {root}; model on {predictor.device}, "
          f"{predictor.dtype}; Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("app", help="local web app to draw, track and export masks, and its HTTP API",
                              description="Serve the rotoscoping page and the HTTP API (OpenAPI docs at /docs).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=types.port, default=7860, help="port (default %(default)s)")
    p.add_argument("--root", type=Path, default=Path("."),
                   help="folder the app opens videos from and exports into; no path outside it is served "
                        "(default: the current folder)")
    p.add_argument("--max-sessions", type=types.session_count, default=4,
                   help="videos open at once; opening one more closes the least recently used idle one")
    p.add_argument("--max-upload-mb", type=types.upload_mib, default=2048, help="largest video upload in MiB")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level")
    add_model_args(p)
    add_propagation_args(p)
    p.set_defaults(run=run_app)
