#!/usr/bin/env python3
"""Independent synthetic image-classification data generator.

Usage: python make.py OUT_DIR --kind {objects,arrows,rings,glyphs} --seed N

Writes OUT_DIR/<class>/<i>.jpg, 3 classes x 100 images, 160x120 px JPEG.
Only numpy and OpenCV are used; everything is derived from --seed.
"""
import argparse
import math
import os

import cv2
import numpy as np

W, H = 160, 120          # output size
SS = 4                   # supersampling factor for shape masks
N_PER_CLASS = 100

KINDS = {
    "objects": ["star", "heart", "moon"],
    "arrows": ["left", "up", "right"],
    "rings": ["ring", "disk", "square"],
    "glyphs": ["X", "7", "K"],
}
KIND_ID = {"objects": 1, "arrows": 2, "rings": 3, "glyphs": 4}

# distractor types allowed per kind (chosen so none resembles a class shape)
DISTRACTORS = {
    "objects": ["frame", "box", "line", "bar"],
    "arrows": ["frame", "box", "line", "circle"],
    "rings": ["line", "bar", "tri"],
    "glyphs": ["frame", "box", "circle", "tri"],
}

FONTS = [
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
]


def lum(img):
    """Luminance of a BGR float image (0..255)."""
    return 0.114 * img[..., 0] + 0.587 * img[..., 1] + 0.299 * img[..., 2]


def lum_c(c):
    return 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]


def color_with_lum(rng, target, sat_range=(0.2, 1.0)):
    """Random BGR color (0..255) whose luminance equals target (clipped)."""
    target = float(np.clip(target, 0, 255))
    hue = rng.uniform(0, 180)
    sat = rng.uniform(*sat_range) * 255
    hsv = np.uint8([[[hue, sat, 200]]])
    c = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)
    L = lum_c(c)
    if target <= L:
        c = c * (target / max(L, 1e-6))
    else:
        # blend towards white: L + t*(255-L) = target
        t = (target - L) / max(255 - L, 1e-6)
        c = c + t * (255 - c)
    return c


# ---------------------------------------------------------------- textures
def smooth_noise(rng, h, w, cells):
    cells = max(2, int(cells))
    ch = max(2, int(round(cells * h / max(h, w)))) + 1
    cw = max(2, int(round(cells * w / max(h, w)))) + 1
    g = rng.random((ch, cw)).astype(np.float32)
    n = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    n -= n.min()
    n /= max(n.max(), 1e-6)
    return n


def fractal_noise(rng, h, w):
    out = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    cells = rng.uniform(2, 5)
    for _ in range(4):
        out += amp * smooth_noise(rng, h, w, cells)
        tot += amp
        amp *= 0.5
        cells *= 2.1
    return out / tot


def coords(h, w, rng):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, math.pi)
    xr = x * math.cos(a) + y * math.sin(a)
    yr = -x * math.sin(a) + y * math.cos(a)
    return x, y, xr, yr


def tex_wood(rng, h, w):
    x, y, xr, yr = coords(h, w, rng)
    # far-away growth centre -> nearly parallel rings with curvature
    cx = rng.uniform(-3, 3) * w
    cy = rng.uniform(-3, 3) * h
    r = np.sqrt((xr - cx) ** 2 + ((yr - cy) * rng.uniform(0.2, 0.6)) ** 2)
    warp = smooth_noise(rng, h, w, rng.uniform(2, 5)) * rng.uniform(0.5, 2.0)
    period = rng.uniform(5, 14) * (w / 160)
    v = 0.5 + 0.5 * np.sin(2 * math.pi * (r / period + warp))
    v = v ** rng.uniform(0.6, 2.5)
    # fine streaks along the grain
    streak = cv2.resize(rng.random((h // 2 + 1, 6)).astype(np.float32), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    v = 0.8 * v + 0.2 * streak
    return v


def tex_waves(rng, h, w):
    x, y, xr, yr = coords(h, w, rng)
    p1 = rng.uniform(6, 25) * (w / 160)
    p2 = rng.uniform(20, 80) * (w / 160)
    A = rng.uniform(0.2, 1.5)
    v = 0.5 + 0.5 * np.sin(2 * math.pi * (xr / p1 + A * np.sin(2 * math.pi * yr / p2
                                                              + rng.uniform(0, 6))))
    return v


def tex_checker(rng, h, w):
    x, y, xr, yr = coords(h, w, rng)
    s = rng.uniform(8, 28) * (w / 160)
    ox, oy = rng.uniform(0, s, 2)
    if rng.random() < 0.5:
        v = ((np.floor((xr + ox) / s) + np.floor((yr + oy) / s)) % 2).astype(np.float32)
    else:
        # tiles with grout and per-tile shade
        ix = np.floor((xr + ox) / s).astype(np.int32)
        iy = np.floor((yr + oy) / s).astype(np.int32)
        shade = rng.random((64, 64)).astype(np.float32)
        v = 0.35 + 0.5 * shade[iy % 64, ix % 64]
        g = rng.uniform(0.05, 0.15)
        fx = ((xr + ox) / s) % 1.0
        fy = ((yr + oy) / s) % 1.0
        grout = (fx < g) | (fy < g)
        v = np.where(grout, rng.choice([0.0, 1.0]), v).astype(np.float32)
    return v


def tex_gradient(rng, h, w):
    x, y, xr, yr = coords(h, w, rng)
    v = (xr - xr.min()) / max(xr.max() - xr.min(), 1e-6)
    v = v + rng.uniform(-0.5, 0.5) * ((yr - yr.mean()) / max(h, w)) ** 2 * 4
    v -= v.min()
    return v / max(v.max(), 1e-6)


def tex_noise(rng, h, w):
    return fractal_noise(rng, h, w)


TEXTURES = [tex_wood, tex_waves, tex_checker, tex_gradient, tex_noise]


def textured_layer(rng, h, w, base_lum, amp):
    t = TEXTURES[rng.integers(len(TEXTURES))]
    v = t(rng, h, w)
    if rng.random() < 0.6:
        t2 = TEXTURES[rng.integers(len(TEXTURES))]
        a = rng.uniform(0.15, 0.45)
        v = (1 - a) * v + a * t2(rng, h, w)
    v = (v - v.min()) / max(v.max() - v.min(), 1e-6)
    c1 = color_with_lum(rng, base_lum - amp / 2, (0.05, 0.6))
    c2 = color_with_lum(rng, base_lum + amp / 2, (0.05, 0.6))
    return c1[None, None, :] * (1 - v[..., None]) + c2[None, None, :] * v[..., None]


def floor_layer(rng, h, w, yh, base_lum, amp):
    """Perspective floor (checker or planks) below horizon row yh (in this res)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.maximum(y - yh, 0) + 1.0
    vx = rng.uniform(0.2, 0.8) * w
    k = rng.uniform(0.5, 1.5) * h * 0.25
    u = (x - vx) / d * rng.uniform(0.6, 1.6)
    v = k / d
    style = rng.integers(3)
    if style == 0:
        f = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    elif style == 1:  # planks running away from viewer
        f = (0.5 + 0.5 * np.sin(2 * math.pi * u)).astype(np.float32)
        f = (f > 0.12).astype(np.float32) * (0.6 + 0.4 * fractal_noise(rng, h, w))
    else:  # plain floor with noise
        f = fractal_noise(rng, h, w)
    c1 = color_with_lum(rng, base_lum - amp / 2, (0.05, 0.5))
    c2 = color_with_lum(rng, base_lum + amp / 2, (0.05, 0.5))
    return c1[None, None, :] * (1 - f[..., None]) + c2[None, None, :] * f[..., None]


def make_background(rng):
    # built at 2x then area-downsampled (anti-aliasing for checkers)
    h2, w2 = H * 2, W * 2
    base = rng.uniform(45, 210)
    amp = rng.uniform(12, 45)
    img = textured_layer(rng, h2, w2, base, amp)
    if rng.random() < 0.65:
        yh = int(rng.uniform(0.3, 0.78) * h2)
        fbase = np.clip(base + rng.uniform(-60, 60), 45, 210)
        famp = rng.uniform(12, 45)
        fl = floor_layer(rng, h2, w2, yh, fbase, famp)
        img[yh:] = fl[yh:]
        # horizon line / skirting
        lc = color_with_lum(rng, rng.choice([fbase - 60, fbase + 60]), (0.0, 0.4))
        th = int(rng.integers(1, 6))
        img[max(0, yh - th):yh + 1] = lc
    img = cv2.resize(img.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)
    return img.astype(np.float32)


# ---------------------------------------------------------------- shape masks
def crop_mask(m):
    ys, xs = np.nonzero(m)
    return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def rot_pts(pts, ang_deg, c):
    a = math.radians(ang_deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ R.T + c


def canvas_for(size_px):
    C = int(size_px * SS * 1.8) + 16
    return np.zeros((C, C), np.uint8), np.array([C / 2, C / 2])


def mask_star(rng, size):
    m, c = canvas_for(size)
    R = size * SS / 2
    r = R * rng.uniform(0.38, 0.5)
    ang = np.arange(10) * math.pi / 5 - math.pi / 2
    rad = np.where(np.arange(10) % 2 == 0, R, r)
    pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    pts = rot_pts(pts, rng.uniform(0, 360), c)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    return crop_mask(m)


def mask_heart(rng, size):
    m, c = canvas_for(size)
    t = np.linspace(0, 2 * math.pi, 200, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    x = x * rng.uniform(0.9, 1.1)
    pts = np.stack([x, y], 1)
    pts -= (pts.max(0) + pts.min(0)) / 2
    pts *= size * SS / (pts.max(0) - pts.min(0)).max()
    pts = rot_pts(pts, rng.uniform(-50, 50), c)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    return crop_mask(m)


def mask_moon(rng, size):
    m, c = canvas_for(size)
    R = size * SS / 2
    k = rng.uniform(0.75, 0.92)
    d = rng.uniform(1.12, 1.3) - k
    a = math.radians(rng.uniform(0, 360))
    cv2.circle(m, (int(c[0]), int(c[1])), int(R), 255, -1)
    ic = (int(c[0] + d * R * math.cos(a)), int(c[1] + d * R * math.sin(a)))
    cv2.circle(m, ic, int(k * R), 0, -1)
    return crop_mask(m)


def mask_arrow(rng, size, direction):
    m, c = canvas_for(size)
    L = size * SS
    hl = L * rng.uniform(0.32, 0.5)
    hw = L * rng.uniform(0.22, 0.36)
    sw = min(L * rng.uniform(0.07, 0.14), hw * 0.6)
    pts = np.array([[-L / 2, -sw], [L / 2 - hl, -sw], [L / 2 - hl, -hw], [L / 2, 0],
                    [L / 2 - hl, hw], [L / 2 - hl, sw], [-L / 2, sw]])
    base = {"right": 0.0, "up": -90.0, "left": 180.0}[direction]
    pts = rot_pts(pts, base + rng.uniform(-20, 20), c)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    return crop_mask(m)


def mask_ring(rng, size, cls):
    m, c = canvas_for(size)
    t = rng.uniform(2, 6) * SS
    ci = (int(c[0]), int(c[1]))
    if cls == "ring":
        R = size * SS / 2
        cv2.circle(m, ci, int(R), 255, -1)
        cv2.circle(m, ci, int(R - t), 0, -1)
    elif cls == "disk":
        R = size * SS / 2
        cv2.circle(m, ci, int(R), 255, -1)
    else:
        a = size * SS / 2
        ang = rng.uniform(0, 90)
        sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
        outer = rot_pts(sq * a, ang, c)
        inner = rot_pts(sq * (a - t), ang, c)
        cv2.fillPoly(m, [np.round(outer).astype(np.int32)], 255)
        cv2.fillPoly(m, [np.round(inner).astype(np.int32)], 0)
    return crop_mask(m)


def mask_glyph(rng, frac, ch):
    font = FONTS[rng.integers(len(FONTS))]
    target_h = frac * H * SS
    thick_out = rng.uniform(1.2, 4.0)
    thick = max(1, int(round(thick_out * SS)))

    def draw(scale):
        (tw, th), bl = cv2.getTextSize(ch, font, scale, thick)
        C = int(max(tw, th) * 1.8) + 4 * thick + 16
        m = np.zeros((C, C), np.uint8)
        org = (int(C / 2 - tw / 2), int(C / 2 + th / 2))
        cv2.putText(m, ch, org, font, scale, 255, thick, cv2.LINE_AA)
        return m

    # calibrate the scale on the actual ink height (upright glyph)
    scale = 1.0
    for _ in range(3):
        ink_h = crop_mask(draw(scale)).shape[0]
        scale *= target_h / max(ink_h, 1)
    m = draw(scale)
    C = m.shape[0]
    M = cv2.getRotationMatrix2D((C / 2, C / 2), rng.uniform(-25, 25), 1.0)
    m = cv2.warpAffine(m, M, (C, C), flags=cv2.INTER_LINEAR)
    m[m < 8] = 0
    return crop_mask(m)


def object_mask(rng, kind, cls):
    frac = rng.uniform(0.25, 0.60)
    size = frac * H
    if kind == "objects":
        tight = {"star": mask_star, "heart": mask_heart, "moon": mask_moon}[cls](rng, size)
    elif kind == "arrows":
        tight = mask_arrow(rng, size, cls)
    elif kind == "rings":
        tight = mask_ring(rng, size, cls)
    else:
        tight = mask_glyph(rng, frac, cls)
    th, tw = tight.shape
    # place fully inside (2 px margin) on the supersampled canvas
    big = np.zeros((H * SS, W * SS), np.uint8)
    mx, my = 2 * SS, 2 * SS
    x0 = int(rng.integers(mx, max(mx + 1, W * SS - tw - mx)))
    y0 = int(rng.integers(my, max(my + 1, H * SS - th - my)))
    tight = tight[: H * SS - y0, : W * SS - x0]
    big[y0:y0 + tight.shape[0], x0:x0 + tight.shape[1]] = tight
    alpha = cv2.resize(big.astype(np.float32) / 255.0, (W, H), interpolation=cv2.INTER_AREA)
    return alpha


# ---------------------------------------------------------------- distractors
def bbox_of(alpha, pad):
    ys, xs = np.nonzero(alpha > 0.05)
    return (xs.min() - pad, ys.min() - pad, xs.max() + pad, ys.max() + pad)


def hits_box(layer, box):
    x0, y0, x1, y1 = [int(v) for v in box]
    x0, y0 = max(x0, 0), max(y0, 0)
    return layer[y0:y1 + 1, x0:x1 + 1].any()


def draw_distractor(rng, typ):
    layer = np.zeros((H, W), np.uint8)
    sh = 2
    f = 1 << sh

    def P(p):
        return (int(round(p[0] * f)), int(round(p[1] * f)))

    cx, cy = rng.uniform(-10, W + 10), rng.uniform(-10, H + 10)
    if typ in ("frame", "box", "bar"):
        if typ == "bar":
            L = rng.uniform(25, 90)
            wd = rng.uniform(3, min(10, L / 3.5))
            hw_, hh_ = L / 2, wd / 2
            ang = rng.uniform(0, 180)
        else:
            hw_, hh_ = rng.uniform(5, 30), rng.uniform(5, 30)
            ang = rng.uniform(-15, 15)
        sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [hw_, hh_]
        pts = rot_pts(sq, ang, np.array([cx, cy]))
        ip = np.array([P(p) for p in pts], np.int32)
        if typ == "frame":
            cv2.polylines(layer, [ip], True, 255, int(rng.integers(1, 4)), cv2.LINE_AA, sh)
        else:
            cv2.fillPoly(layer, [ip], 255, cv2.LINE_AA, sh)
    elif typ == "line":
        a = rng.uniform(0, math.pi)
        L = rng.uniform(40, 200)
        p0 = (cx - L / 2 * math.cos(a), cy - L / 2 * math.sin(a))
        p1 = (cx + L / 2 * math.cos(a), cy + L / 2 * math.sin(a))
        cv2.line(layer, P(p0), P(p1), 255, int(rng.integers(1, 4)), cv2.LINE_AA, sh)
    elif typ == "circle":
        r = rng.uniform(4, 18)
        cv2.circle(layer, P((cx, cy)), int(r * f), 255, int(rng.integers(1, 3)),
                   cv2.LINE_AA, sh)
    elif typ == "tri":
        r = rng.uniform(5, 14)
        a0 = rng.uniform(0, 2 * math.pi)
        pts = [(cx + r * math.cos(a0 + k * 2.094), cy + r * math.sin(a0 + k * 2.094))
               for k in range(3)]
        ip = np.array([P(p) for p in pts], np.int32)
        cv2.polylines(layer, [ip], True, 255, int(rng.integers(1, 3)), cv2.LINE_AA, sh)
    return layer


def add_distractors(rng, img, kind, obj_box):
    n = int(rng.integers(2, 6))
    types = DISTRACTORS[kind]
    for _ in range(n):
        for _try in range(25):
            typ = types[rng.integers(len(types))]
            layer = draw_distractor(rng, typ)
            if layer.any() and not hits_box(layer, obj_box):
                break
        else:
            continue
        a = layer.astype(np.float32)[..., None] / 255.0 * rng.uniform(0.5, 1.0)
        col = color_with_lum(rng, rng.uniform(20, 235), (0.0, 0.9))
        img = img * (1 - a) + col[None, None, :] * a
    return img


# ---------------------------------------------------------------- scene
def lighting_field(rng):
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    g = ((x - W / 2) * math.cos(a) + (y - H / 2) * math.sin(a)) / W
    field = 1.0 + rng.uniform(0.0, 0.35) * g
    # spot light / vignette
    sx, sy = rng.uniform(0, W), rng.uniform(0, H)
    r2 = ((x - sx) ** 2 + (y - sy) ** 2) / (rng.uniform(0.5, 1.5) * W) ** 2
    field += rng.uniform(-0.1, 0.2) * np.exp(-r2 * 2)
    return np.clip(field, 0.72, 1.25)


def render(rng, kind, cls):
    alpha = object_mask(rng, kind, cls)
    img = make_background(rng)
    img = add_distractors(rng, img, kind, bbox_of(alpha, 3))

    # soft shadow
    if rng.random() < 0.7:
        dx, dy = rng.uniform(-4, 4, 2)
        M = np.float32([[1, 0, dx], [0, 1, dy]])
        sh = cv2.warpAffine(alpha, M, (W, H))
        sh = cv2.GaussianBlur(sh, (0, 0), rng.uniform(1.5, 3.5))
        img = img * (1 - rng.uniform(0.25, 0.5) * sh[..., None])

    # object colour: >= ~75 luminance levels away from the local background
    ring = cv2.dilate((alpha > 0.05).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    Lb = float(lum(img)[ring].mean())
    d = rng.uniform(78, 140)
    opts = [t for t in (Lb - d, Lb + d) if 5 <= t <= 250]
    if not opts:
        opts = [5.0 if Lb > 127 else 250.0]
    target = opts[rng.integers(len(opts))]
    col = color_with_lum(rng, target, (0.15, 1.0))
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    shade = 1 + rng.uniform(0, 0.12) * ((x - W / 2) * math.cos(a) + (y - H / 2) * math.sin(a)) / W
    objimg = np.clip(col[None, None, :] * shade[..., None], 0, 255)
    A = alpha[..., None]
    img = img * (1 - A) + objimg * A

    img = img * lighting_field(rng)[..., None]
    # colour cast
    img = img * rng.uniform(0.93, 1.07, 3)[None, None, :]
    s = rng.uniform(0.3, 0.85)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), s)
    noise = rng.normal(0, rng.uniform(2, 7), (H, W, 1)) + rng.normal(0, rng.uniform(1, 3), (H, W, 3))
    img = np.clip(img + noise, 0, 255)
    return img, alpha


def contrast_ok(img, alpha):
    L = lum(img)
    inside = alpha > 0.85
    if inside.sum() < 8:
        return False, 0.0
    m = (alpha > 0.05).astype(np.uint8)
    outer = cv2.dilate(m, np.ones((7, 7), np.uint8)) > 0
    near = cv2.dilate(m, np.ones((3, 3), np.uint8)) > 0
    band = outer & ~near
    if band.sum() < 8:
        return False, 0.0
    diff = abs(float(L[inside].mean()) - float(L[band].mean()))
    return diff >= 55, diff


def make_image(kind, cls_idx, i, seed):
    cls = KINDS[kind][cls_idx]
    rng = np.random.default_rng([seed, KIND_ID[kind], cls_idx, i])
    for _ in range(30):
        img, alpha = render(rng, kind, cls)
        ok, _ = contrast_ok(img, alpha)
        if ok:
            break
    q = int(rng.integers(60, 96))
    ok, buf = cv2.imencode(".jpg", np.round(img).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--kind", required=True, choices=sorted(KINDS))
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--n", type=int, default=N_PER_CLASS, help="images per class")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    for ci, cls in enumerate(KINDS[args.kind]):
        d = os.path.join(args.out_dir, cls)
        os.makedirs(d, exist_ok=True)
        for i in range(args.n):
            buf = make_image(args.kind, ci, i, args.seed)
            with open(os.path.join(d, f"{i}.jpg"), "wb") as fh:
                fh.write(buf.tobytes())


if __name__ == "__main__":
    main()
