#!/usr/bin/env python3
"""Synthetic 3-class image folders for evaluating an image-classifier tool.

Usage:  python make.py OUT_DIR --kind {suits,faces,plates} --seed N [--per-class 100]

Writes OUT_DIR/<class>/<i>.jpg, 160x120 JPEGs.  Each image is simulated as a
640x480 camera photo of a drawn object held in front of a real scene (random
crop of a sample photograph, sometimes blended with a plain wall/table color),
then downscaled with area averaging and JPEG-encoded at a random quality.
Everything is deterministic given --seed.
"""
import argparse
import os

import cv2
import numpy as np

cv2.setNumThreads(1)

W, H = 640, 480          # simulated camera frame
OW, OH = 160, 120        # written image size

KINDS = {
    "suits": ["heart", "spade", "club"],
    "faces": ["smiling", "frowning", "surprised"],
    "plates": ["left", "right", "bar"],
}


# --------------------------------------------------------------------------
# real photographs
# --------------------------------------------------------------------------
def load_photos():
    from sklearn.datasets import load_sample_images
    photos = [np.ascontiguousarray(im).astype(np.float32) for im in load_sample_images().images]
    path = None
    try:
        import matplotlib.cbook as cbook
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except Exception:
        import matplotlib
        path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    gh = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if gh is None:
        raise SystemExit("cannot read grace_hopper.jpg at %s" % path)
    photos.append(cv2.cvtColor(gh, cv2.COLOR_BGR2RGB).astype(np.float32))
    return photos  # RGB float32 0..255


def lum(img):
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def hsv_color(h, s, v):
    """h in [0,360), s,v in [0,1] -> RGB float 0..255"""
    px = np.array([[[h / 2.0, s * 255.0, v * 255.0]]], np.float32).astype(np.uint8)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def lum_of(c):
    return float(c[0] * 0.299 + c[1] * 0.587 + c[2] * 0.114)


def random_color(rng):
    r = rng.random()
    if r < 0.12:       # grey / black / white
        v = rng.uniform(0.03, 1.0)
        return hsv_color(0, 0, v)
    return hsv_color(rng.uniform(0, 360), rng.uniform(0.35, 1.0), rng.uniform(0.25, 1.0))


def contrasting_color(rng, base, min_diff=90):
    """A color whose luminance differs from `base` by at least min_diff."""
    lb = lum_of(base)
    for _ in range(50):
        if rng.random() < 0.55:   # near black or near white
            if lb > 127:
                c = hsv_color(rng.uniform(0, 360), rng.uniform(0, 0.6), rng.uniform(0.0, 0.18))
            else:
                c = hsv_color(rng.uniform(0, 360), rng.uniform(0, 0.25), rng.uniform(0.88, 1.0))
        else:
            c = random_color(rng)
        if abs(lum_of(c) - lb) >= min_diff:
            return c
    return np.full(3, 0.0 if lb > 127 else 255.0, np.float32)


def low_freq_noise(rng, h, w, cells, amp):
    g = rng.normal(0, 1, (max(2, cells * h // w + 1), cells + 1)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC) * amp


def background(rng, photos):
    ph = photos[rng.integers(len(photos))]
    h0, w0 = ph.shape[:2]
    hmax = min(h0, w0 * 3.0 / 4.0)
    s = rng.uniform(0.3, 1.0)
    ch = int(round(hmax * s))
    cw = min(w0, int(round(ch * 4.0 / 3.0)))
    y0 = rng.integers(0, h0 - ch + 1)
    x0 = rng.integers(0, w0 - cw + 1)
    crop = ph[y0:y0 + ch, x0:x0 + cw]
    img = cv2.resize(crop, (W, H), interpolation=cv2.INTER_LINEAR if s < 0.8 else cv2.INTER_AREA)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = np.ascontiguousarray(img)

    # plain wall / table region, sometimes
    r = rng.random()
    if r < 0.45:
        col = hsv_color(rng.uniform(0, 360), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.95))
        plain = np.empty((H, W, 3), np.float32)
        plain[:] = col
        # a slight gradient and low-frequency unevenness, fine texture
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        grad = ((xx - W / 2) * np.cos(ang) + (yy - H / 2) * np.sin(ang)) / W * rng.uniform(-40, 40)
        plain += (grad + low_freq_noise(rng, H, W, 6, rng.uniform(2, 8)))[..., None]
        plain += rng.normal(0, rng.uniform(0.5, 3), (H, W, 1)).astype(np.float32)
        if r < 0.3:
            # half-plane: table edge / wall corner with a soft border
            ang = rng.uniform(0, 2 * np.pi)
            off = rng.uniform(-0.35, 0.35) * W
            d = (xx - W / 2) * np.cos(ang) + (yy - H / 2) * np.sin(ang) - off
            soft = rng.uniform(1.5, 25)
            a = 1.0 / (1.0 + np.exp(-d / soft))
            a *= rng.uniform(0.8, 1.0)
        else:
            # whole-frame blend (photo seen through / reflected on a plain surface)
            a = np.full((H, W), rng.uniform(0.35, 0.7), np.float32)
        img = img * (1 - a[..., None]) + plain * a[..., None]

    # brightness / contrast / color temperature
    m = img.mean()
    img = (img - m) * rng.uniform(0.65, 1.3) + m + rng.uniform(-40, 40)
    t = rng.uniform(-0.15, 0.15)
    img = img * np.array([1 + t, 1 + 0.1 * t, 1 - t], np.float32)
    return np.clip(img, 0, 255).astype(np.float32)


# --------------------------------------------------------------------------
# object templates (drawn in a T x T square, coordinates normalised to [-0.5,0.5])
# --------------------------------------------------------------------------
SH = 4  # subpixel shift bits for cv2 drawing
SC = 1 << SH


class Canvas:
    def __init__(self, T):
        self.T = T
        self.col = np.zeros((T, T, 3), np.float32)
        self.alpha = np.zeros((T, T), np.float32)
        self.feat = np.zeros((T, T), np.uint8)

    def p(self, x, y):
        return (int(round((x + 0.5) * self.T * SC)), int(round((y + 0.5) * self.T * SC)))

    def r(self, v):
        return max(1, int(round(v * self.T * SC)))

    def t(self, v):
        return max(1, int(round(v * self.T)))


def fill_layer(cv, draw, color, body=True, feature=False):
    """draw(mask) draws white on a uint8 mask; paints color there."""
    m = np.zeros((cv.T, cv.T), np.uint8)
    draw(m)
    a = m.astype(np.float32) / 255.0
    cv.col = cv.col * (1 - a[..., None]) + color[None, None, :] * a[..., None]
    if body:
        cv.alpha = np.maximum(cv.alpha, a)
    if feature:
        cv.feat = np.maximum(cv.feat, m)
    return m


def heart_pts(cv, cx, cy, size, flip=False, n=120):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    # y in [-12, 17] -> centre
    y = y - 2.5
    if flip:
        y = -y
    s = size / 32.0
    pts = [cv.p(cx + xi * s, cy + yi * s) for xi, yi in zip(x, y)]
    return np.array(pts, np.int32)


def draw_suit(rng, cv, cls):
    body = random_color(rng)
    ext = rng.uniform(0.80, 0.88)   # overall extent within template
    if cls == "heart":
        w = ext * rng.uniform(0.92, 1.05)
        pts = heart_pts(cv, 0, 0, w * rng.uniform(0.95, 1.0))
        draw = lambda m: cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, SH)
    elif cls == "spade":
        w = ext * rng.uniform(0.85, 0.95)
        hs = w * 0.9
        pts = heart_pts(cv, 0, -0.5 * ext + hs * 14.5 / 32, hs, flip=True)
        bw = ext * rng.uniform(0.26, 0.36)
        stem = np.array([cv.p(0, 0.05), cv.p(-bw / 2, ext / 2), cv.p(bw / 2, ext / 2)], np.int32)
        def draw(m):
            cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, SH)
            cv2.fillPoly(m, [stem], 255, cv2.LINE_AA, SH)
    else:  # club
        rr = ext * rng.uniform(0.21, 0.235)
        cy = -0.5 * ext + rr
        ly = cy + rr * 1.55
        lx = rr * 1.12
        bw = ext * rng.uniform(0.26, 0.36)
        stem = np.array([cv.p(0, ly - rr * 0.3), cv.p(-bw / 2, ext / 2), cv.p(bw / 2, ext / 2)], np.int32)
        def draw(m):
            for (x, y) in [(0, cy), (-lx, ly), (lx, ly)]:
                cv2.circle(m, cv.p(x, y), cv.r(rr), 255, -1, cv2.LINE_AA, SH)
            cv2.circle(m, cv.p(0, ly - rr * 0.35), cv.r(rr * 0.6), 255, -1, cv2.LINE_AA, SH)
            cv2.fillPoly(m, [stem], 255, cv2.LINE_AA, SH)
    m = fill_layer(cv, draw, body)
    cv.feat = m.copy()   # the silhouette itself is the feature
    return body


def draw_face(rng, cv, cls):
    body = random_color(rng)
    fc = contrasting_color(rng, body, 100)
    R = rng.uniform(0.40, 0.45)
    fill_layer(cv, lambda m: cv2.circle(m, cv.p(0, 0), cv.r(R), 255, -1, cv2.LINE_AA, SH), body)
    ex = R * rng.uniform(0.32, 0.42)
    ey = -R * rng.uniform(0.22, 0.34)
    th = cv.t(R * rng.uniform(0.13, 0.17))     # mouth stroke thickness
    if cls == "surprised":
        erx, ery = R * rng.uniform(0.13, 0.16), R * rng.uniform(0.19, 0.23)
    else:
        erx, ery = R * rng.uniform(0.10, 0.13), R * rng.uniform(0.14, 0.19)

    def eyes(m):
        for sx in (-1, 1):
            cv2.ellipse(m, cv.p(sx * ex, ey), (cv.r(erx), cv.r(ery)), 0, 0, 360, 255, -1, cv2.LINE_AA, SH)
    fill_layer(cv, eyes, fc, body=False, feature=True)

    mw = R * rng.uniform(0.50, 0.62)
    if cls == "smiling":
        # U-shaped arc: lower half of an ellipse
        cyy = R * rng.uniform(0.02, 0.10)
        mh = R * rng.uniform(0.36, 0.46)
        def mouth(m):
            cv2.ellipse(m, cv.p(0, cyy), (cv.r(mw), cv.r(mh)), 0, 12, 168, 255, th, cv2.LINE_AA, SH)
    elif cls == "frowning":
        # inverted U: upper half of an ellipse, placed low
        cyy = R * rng.uniform(0.66, 0.74)
        mh = R * rng.uniform(0.32, 0.40)
        def mouth(m):
            cv2.ellipse(m, cv.p(0, cyy), (cv.r(mw), cv.r(mh)), 0, 192, 348, 255, th, cv2.LINE_AA, SH)
    else:
        # open round "O" mouth, filled, plus raised eyebrows
        cyy = R * rng.uniform(0.38, 0.46)
        orx, ory = R * rng.uniform(0.18, 0.23), R * rng.uniform(0.24, 0.30)
        bth = cv.t(R * 0.08)
        def mouth(m):
            cv2.ellipse(m, cv.p(0, cyy), (cv.r(orx), cv.r(ory)), 0, 0, 360, 255, -1, cv2.LINE_AA, SH)
            for sx in (-1, 1):
                cv2.ellipse(m, cv.p(sx * ex, ey - ery - R * 0.16), (cv.r(erx * 1.5), cv.r(R * 0.1)),
                            0, 200, 340, 255, bth, cv2.LINE_AA, SH)
    fill_layer(cv, mouth, fc, body=False, feature=True)
    return body


def draw_plate(rng, cv, cls):
    body = random_color(rng)
    sym = contrasting_color(rng, body, 100)
    R = rng.uniform(0.42, 0.46)
    if rng.random() < 0.65:
        ring = sym if rng.random() < 0.6 else contrasting_color(rng, body, 70)
        fill_layer(cv, lambda m: cv2.circle(m, cv.p(0, 0), cv.r(R), 255, -1, cv2.LINE_AA, SH), ring)
        Ri = R * rng.uniform(0.80, 0.88)
    else:
        Ri = R
    fill_layer(cv, lambda m: cv2.circle(m, cv.p(0, 0), cv.r(Ri), 255, -1, cv2.LINE_AA, SH), body)
    L = Ri * rng.uniform(0.68, 0.78)          # half length of symbol
    hw = Ri * rng.uniform(0.12, 0.16)         # half width of shaft / bar
    if cls == "bar":
        hw = Ri * rng.uniform(0.16, 0.21)
        poly = np.array([cv.p(-L, -hw), cv.p(L, -hw), cv.p(L, hw), cv.p(-L, hw)], np.int32)
    else:
        hh = Ri * rng.uniform(0.40, 0.50)      # half height of arrow head
        hl = Ri * rng.uniform(0.55, 0.68)      # head length
        xs = [-L, -L + hl, -L + hl, L, L, -L + hl, -L + hl]
        ys = [0, -hh, -hw, -hw, hw, hw, hh]
        if cls == "right":
            xs = [-x for x in xs]
        poly = np.array([cv.p(x, y) for x, y in zip(xs, ys)], np.int32)
    fill_layer(cv, lambda m: cv2.fillPoly(m, [poly], 255, cv2.LINE_AA, SH), sym, body=False, feature=True)
    return body


DRAW = {"suits": draw_suit, "faces": draw_face, "plates": draw_plate}


def make_object(rng, kind, cls, T):
    cv = Canvas(T)
    DRAW[kind](rng, cv, cls)
    # sometimes a thin outline around the silhouette
    if rng.random() < 0.35:
        oc = random_color(rng) if rng.random() < 0.5 else hsv_color(0, 0, rng.choice([0.05, 0.95]))
        mask = (cv.alpha > 0.5).astype(np.uint8)
        cnts, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        th = max(1, int(round(T * rng.uniform(0.012, 0.025))))
        m = np.zeros((T, T), np.uint8)
        cv2.drawContours(m, cnts, -1, 255, th, cv2.LINE_AA)
        a = m.astype(np.float32) / 255.0
        cv.col = cv.col * (1 - a[..., None]) + oc[None, None] * a[..., None]
        cv.alpha = np.maximum(cv.alpha, a)
    # gentle lighting gradient and a little print texture on the object
    yy, xx = np.mgrid[0:T, 0:T].astype(np.float32) / T - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    shade = 1.0 + rng.uniform(0.0, 0.25) * (xx * np.cos(ang) + yy * np.sin(ang))
    cv.col = cv.col * shade[..., None] + rng.normal(0, 2.0, (T, T, 1)).astype(np.float32)
    cv.col = np.clip(cv.col, 0, 255)
    return cv


# --------------------------------------------------------------------------
# scene composition
# --------------------------------------------------------------------------
def placement(rng, T):
    """Homography from template pixels to the 640x480 frame."""
    ext = 0.88                                       # drawn extent of template
    size = rng.uniform(0.20, 0.50) * H               # object size in frame px
    s = size / (ext * T)                             # template px -> frame px
    half = 0.5 * size * 1.25
    cx = rng.uniform(half, W - half)
    cy = rng.uniform(half, H - half)
    th = np.deg2rad(rng.uniform(-30, 30))
    c, sn = np.cos(th), np.sin(th)
    src = np.array([[0, 0], [T, 0], [T, T], [0, T]], np.float32)
    dst = []
    for (x, y) in src:
        u, v = (x - T / 2) * s, (y - T / 2) * s
        dst.append([cx + c * u - sn * v, cy + sn * u + c * v])
    dst = np.array(dst, np.float32)
    # small perspective tilt: jitter the corners
    dst += np.clip(rng.normal(0, 0.035, (4, 2)), -0.08, 0.08).astype(np.float32) * (T * s)
    M = cv2.getPerspectiveTransform(src, dst)
    return M, size


def warp(a, M, interp=cv2.INTER_LINEAR):
    return cv2.warpPerspective(a, M, (W, H), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def add_occluder(rng, img, photos, objmask, featmask, size):
    """Returns (image, occluder alpha or None)."""
    area = objmask.sum()
    farea = max(1, featmask.sum())
    cnts, _ = cv2.findContours(objmask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not cnts:
        return img, None
    pts = np.concatenate([c.reshape(-1, 2) for c in cnts])
    kind = rng.integers(3)
    p = pts[rng.integers(len(pts))].astype(np.float64)
    ys, xs = np.nonzero(objmask)
    out = p - np.array([xs.mean(), ys.mean()])
    # mostly pointing away from the object, so it enters from outside
    ang = np.arctan2(out[1], out[0]) + rng.uniform(-1.0, 1.0)
    scale = rng.uniform(0.15, 0.35) * size
    for _ in range(12):
        m = np.zeros((H, W), np.uint8)
        if kind == 0:      # finger / pen: capsule coming in from outside
            d = np.array([np.cos(ang), np.sin(ang)])
            q = p + d * size * 2.0
            cv2.line(m, tuple(int(v) for v in p), tuple(int(v) for v in q), 255,
                     max(3, int(scale * 0.6)), cv2.LINE_AA)
        elif kind == 1:    # blob
            cv2.ellipse(m, (int(p[0]), int(p[1])), (max(2, int(scale * 0.6)), max(2, int(scale * 0.4))),
                        np.rad2deg(ang), 0, 360, 255, -1, cv2.LINE_AA)
        else:              # rotated rectangle (paper, card, leaf...)
            box = cv2.boxPoints(((float(p[0]), float(p[1])), (scale * 1.2, scale * 0.7), np.rad2deg(ang)))
            cv2.fillPoly(m, [np.int32(box)], 255, cv2.LINE_AA)
        mb = m > 127
        ov = (mb & objmask).sum() / area
        fov = (mb & (featmask > 0)).sum() / farea
        if 0.02 <= ov <= 0.15 and fov <= 0.2:
            break
        if ov < 0.02:
            scale *= 1.25
        else:
            scale *= 0.75
    else:
        return img, None
    a = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), 1.2)
    # small contact shadow
    sh = cv2.GaussianBlur(np.roll(a, (int(size * 0.03), int(size * 0.03)), (0, 1)), (0, 0), size * 0.03)
    img = img * (1 - 0.35 * sh[..., None])
    if rng.random() < 0.4:     # textured: a patch of a photo
        tex = background(rng, photos)
    else:
        col = random_color(rng) if rng.random() < 0.6 else hsv_color(rng.uniform(10, 35), rng.uniform(0.25, 0.55), rng.uniform(0.45, 0.9))
        tex = np.empty((H, W, 3), np.float32)
        tex[:] = col
        tex += low_freq_noise(rng, H, W, 8, 10)[..., None]
    return img * (1 - a[..., None]) + tex * a[..., None], a


def motion_kernel(rng, length):
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    ang = rng.uniform(0, np.pi)
    d = np.array([np.cos(ang), np.sin(ang)]) * c
    cv2.line(k, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))), 1.0, 1, cv2.LINE_AA)
    return k / k.sum()


def disk_kernel(r):
    n = 2 * int(np.ceil(r)) + 1
    k = np.zeros((n, n), np.float32)
    cv2.circle(k, (n // 2, n // 2), int(round(r)), 1.0, -1, cv2.LINE_AA)
    return k / k.sum()


def contrast_ok(L, objmask, size, occ=None, min_diff=30.0):
    """|mean luminance of object - mean of a ring just around it| >= min_diff.
    objmask: bool object mask; size: object size in pixels of this image."""
    m8 = objmask.astype(np.uint8)
    k1 = max(3, int(size * 0.03)) | 1
    k2 = max(k1 + 4, int(size * 0.15)) | 1
    inner = cv2.dilate(m8, np.ones((k1, k1), np.uint8)) > 0
    outer = cv2.dilate(m8, np.ones((k2, k2), np.uint8)) > 0
    ring = outer & ~inner
    obj = objmask.copy()
    if occ is not None:
        obj &= ~occ
        ring &= ~occ
    if obj.sum() < 20 or ring.sum() < 20:
        return False
    return abs(float(L[obj].mean()) - float(L[ring].mean())) >= min_diff


def render_once(rng, kind, cls, photos):
    while True:
        bg = background(rng, photos)
        for _ in range(15):
            T = int(rng.integers(160, 260))
            obj = make_object(rng, kind, cls, T)
            M, size = placement(rng, T)
            col = warp(obj.col, M)
            al = np.clip(warp(obj.alpha, M), 0, 1)
            feat = warp(obj.feat, M, cv2.INTER_NEAREST)
            img = bg.copy()
            if rng.random() < 0.6:   # soft shadow cast on the background
                off = rng.uniform(0.03, 0.09) * size
                ang = rng.uniform(0, 2 * np.pi)
                Ms = np.float32([[1, 0, off * np.cos(ang)], [0, 1, off * np.sin(ang)]])
                sh = cv2.warpAffine(al, Ms, (W, H))
                sh = cv2.GaussianBlur(sh, (0, 0), rng.uniform(0.02, 0.06) * size)
                img = img * (1 - rng.uniform(0.25, 0.55) * sh[..., None])
            img = img * (1 - al[..., None]) + col * al[..., None]
            objmask = al > 0.5
            # contrast requirement: object vs immediate surroundings (re-draw if not)
            if contrast_ok(lum(img), objmask, size):
                break
        else:
            continue   # new background
        break

    occ = None
    if rng.random() < 0.35:
        img, occ = add_occluder(rng, img, photos, objmask, feat, size)

    r = rng.random()
    if r < 0.18:
        img = cv2.filter2D(img, -1, motion_kernel(rng, int(rng.integers(5, 18))))
    elif r < 0.36:
        img = cv2.filter2D(img, -1, disk_kernel(rng.uniform(1.5, 5.5)))
    if rng.random() < 0.5:   # vignetting
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        rr = ((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / (W / 2) ** 2
        img = img * (1 - rng.uniform(0.1, 0.35) * rr)[..., None]
    # sensor noise: luminance-dependent shot noise + read noise + slight chroma noise
    sig = rng.uniform(1.5, 7.0)
    shot = np.sqrt(np.clip(img.mean(axis=2, keepdims=True), 0, 255) / 255.0)
    img = img + rng.normal(0, 1, (H, W, 1)).astype(np.float32) * sig * (0.5 + shot)
    img = img + rng.normal(0, sig * 0.4, (H, W, 3)).astype(np.float32)
    img = np.clip(img, 0, 255)
    small = cv2.resize(img, (OW, OH), interpolation=cv2.INTER_AREA)
    small = small + rng.normal(0, rng.uniform(0.3, 2.5), small.shape).astype(np.float32)
    small = np.clip(small + 0.5, 0, 255).astype(np.uint8)

    # check the contrast again on the image as written (after blur, vignette, noise)
    f = OW / W
    sm = cv2.resize(objmask.astype(np.float32), (OW, OH), interpolation=cv2.INTER_AREA) > 0.5
    so = None
    if occ is not None:
        so = cv2.resize(occ, (OW, OH), interpolation=cv2.INTER_AREA) > 0.2
    return small, contrast_ok(lum(small.astype(np.float32)), sm, size * f, so)


def render(rng, kind, cls, photos):
    for _ in range(50):
        small, ok = render_once(rng, kind, cls, photos)
        if ok:
            return small
    raise RuntimeError("could not render a %s/%s image with enough contrast" % (kind, cls))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--kind", required=True, choices=sorted(KINDS))
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--per-class", type=int, default=100)
    args = ap.parse_args()

    photos = load_photos()
    classes = KINDS[args.kind]
    kind_id = sorted(KINDS).index(args.kind)
    for ci, cls in enumerate(classes):
        d = os.path.join(args.out_dir, cls)
        os.makedirs(d, exist_ok=True)
        for i in range(args.per_class):
            rng = np.random.default_rng([args.seed, kind_id, ci, i])
            im = render(rng, args.kind, cls, photos)
            q = int(rng.integers(55, 96))
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(im, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
            assert ok
            with open(os.path.join(d, "%d.jpg" % i), "wb") as f:
                f.write(buf.tobytes())
    print("wrote %d images to %s (%s: %s)" % (len(classes) * args.per_class, args.out_dir, args.kind, ", ".join(classes)))


if __name__ == "__main__":
    main()
