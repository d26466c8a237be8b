"""`cnnport web`: the live classifier as a static site, and a server for it.

Example:
    $ cnnport web digits.onnx -o site/
    $ cnnport web digits.onnx -o site/ --serve --port 8000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..command import Command, command

__all__ = ["Web"]


@command
class Web(Command):
    name = "web"
    help = "write the live classifier as a static web page (offline: onnxruntime-web, camera, files)"
    description = (
        "Writes a static site that classifies the camera and image files in the browser, offline: the "
        "page, the cnnport JS module, onnxruntime-web's WASM (and WebGPU) files, and the model as an "
        "RGBA frame model with its card. Any static server serves it (on one WASM thread); --serve "
        "serves it on 127.0.0.1 with the cross-origin isolation headers, so WASM may run on several threads (the page takes half the cores, at most 4)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "model",
            help="the .onnx model (a tensor model, or its RGBA frame model: .frame-rgba.onnx, or "
            ".frame-rgba.ort from --ort); or a site folder written before, to --serve it as it is",
        )
        parser.add_argument("-o", "--out", default=None, help="the site's folder (default: STEM-site/)")
        parser.add_argument("--serve", action="store_true", help="then serve it on 127.0.0.1 until Ctrl-C")
        parser.add_argument("--port", type=int, default=8000, help="port for --serve (0: any free port)")
        parser.add_argument(
            "--plain",
            action="store_true",
            help="serve without the COOP/COEP headers, as a plain static host does (one thread)",
        )
        parser.add_argument(
            "--ort-web",
            default=None,
            help="onnxruntime-web's dist folder (or its package folder, or a node_modules holding it); "
            "default: $CNNPORT_ORT_WEB, then js/node_modules of this checkout",
        )
        parser.add_argument("--js", default=None, help="the cnnport JS module's folder (default: js/src)")
        parser.add_argument("--no-webgpu", action="store_true", help="ship the WASM build only (26 MB less)")
        parser.add_argument("-k", "--top-k", type=int, default=3, help="classes shown with bars")
        parser.add_argument(
            "--threshold", type=float, default=0.5, help="smoothed score below which the page says uncertain"
        )
        parser.add_argument(
            "--smoothing", type=float, default=0.4, help="weight of the newest frame in the average (1: off)"
        )
        parser.add_argument("--title", default=None, help="the page's title (default: the model's name)")

    def run(self, args: argparse.Namespace) -> int:
        from cnnport.runtime import CnnportError

        from ..web import SiteConfig, write_site

        model = Path(args.model)
        if model.is_dir() and (model / "site.json").is_file():
            if not args.serve:
                raise CnnportError(f"{model} is a site already; add --serve to serve it, or give a .onnx")
            return serve(model, args.port, isolated=not args.plain)
        out = Path(args.out) if args.out else Path(f"{model.name.split('.')[0]}-site")
        config = SiteConfig(
            top_k=args.top_k,
            threshold=args.threshold,
            smoothing=args.smoothing,
            title=args.title,
            ort_web=args.ort_web,
            js=args.js,
            webgpu=not args.no_webgpu,
        )
        site = write_site(model, out, config)
        made = "made from the tensor model" if site.made_frame_model else "copied"
        print(f"wrote {site.root}/ ({site.size_mb:.0f} MB): index.html, {site.model.name} ({made})")
        if not args.serve:
            print(f"serve it with: cnnport web {out} --serve   (or any static server: one WASM thread)")
            return 0
        return serve(site.root, args.port, isolated=not args.plain)


def serve(root: Path, port: int, isolated: bool) -> int:
    """Serves ``root`` until Ctrl-C; prints the address first."""
    from cnnport.export.webserver import SiteServer
    from cnnport.runtime import CnnportError

    try:
        server = SiteServer(root, port, isolated=isolated)
    except OSError as exc:
        raise CnnportError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; try --port 0") from None
    threads = "cross-origin isolated: WASM threads on" if isolated else "plain: one WASM thread"
    print(f"serving {root}/ at {server.url}  ({threads}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0
