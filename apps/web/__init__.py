"""The live classifier as a static web page: camera or image files -> the RGBA frame model
on onnxruntime-web, with the desktop webcam app's smoothed headline, top-k bars and
heatmap. `cnnport web` writes the site; :func:`write_site` is the library call.

Example:
    >>> from cnnport.apps.web import SiteConfig, write_site
    >>> write_site("digits.onnx", "site/", SiteConfig())          # doctest: +SKIP
"""

from __future__ import annotations

from .site import PAGE_FILES, Site, SiteConfig, write_site

__all__ = ["PAGE_FILES", "Site", "SiteConfig", "write_site"]
