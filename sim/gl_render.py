"""The twin's pinhole canvas rasterized with OpenGL (moderngl, Mesa's llvmpipe on the CPU).

A candidate for the canvas step of ``sim.render.CameraRenderer`` (step 2 of its docstring):
the same solids, faces, shading and decals, drawn with a depth buffer instead of the
painter's order, so any number of small parts (wheels, louvres, handrails) costs triangles,
not Python calls. Steps 1, 3 and 4 (hall background, lens map, light, noise, JPEG) stay
as they are: ``render_gl`` returns exactly what ``CameraRenderer.render`` returns, with
the canvas drawn here. ``bench/bench_render.py --compare-gl`` measures both side by side.

Headless: an EGL context on Mesa's software rasterizer (Debian's ``libegl1`` and
``libgl1-mesa-dri``), no display, no GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim import variety
from sim.render import NEAR_M, CameraRenderer, Lighting, face_shading
from sim.scene import Solid

if TYPE_CHECKING:
    import moderngl

FAR_M = 500.0
MAX_SHAPES = 20_000  # cached shapes (a twin has a few hundred distinct ones)

_VERTEX = """
#version 330
uniform mat3 rotation;
uniform vec3 translation;
uniform vec4 intrinsics;  // fx, fy, cx, cy of the canvas
uniform vec2 size;        // canvas width, height
uniform vec2 depth;       // near, far
in vec3 in_world;
in vec3 in_colour;
in vec2 in_uv;
out vec3 colour;
out vec2 uv;
void main() {
    vec3 c = rotation * in_world + translation;
    float n = depth.x, f = depth.y;
    gl_Position = vec4(
        (2.0 * intrinsics.x / size.x) * c.x + (2.0 * intrinsics.z / size.x - 1.0) * c.z,
        -(2.0 * intrinsics.y / size.y) * c.y + (1.0 - 2.0 * intrinsics.w / size.y) * c.z,
        (c.z * (f + n) - 2.0 * f * n) / (f - n),
        c.z);
    colour = in_colour;
    uv = in_uv;
}
"""

_FRAGMENT = """
#version 330
uniform sampler2D plate;
uniform bool textured;
uniform float shade;
in vec3 colour;
in vec2 uv;
out vec3 frag;
void main() {
    frag = textured ? texture(plate, uv).rgb * shade : colour;
}
"""

_QUAD_UV = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)  # decal corner order
_TRIANGLES = np.array([0, 1, 2, 0, 2, 3])


class GlCanvas:
    """Draws solids on one camera's pinhole canvas; build once per camera."""

    def __init__(self, renderer: CameraRenderer) -> None:
        import moderngl  # the train extra: only a twin drawn with OpenGL needs it

        self.renderer = renderer
        self.ctx = moderngl.create_standalone_context(backend="egl")  # type: ignore[arg-type]
        w, h = renderer.canvas_size
        self.colour = self.ctx.texture((w, h), 3)
        self.fbo = self.ctx.framebuffer(
            color_attachments=[self.colour], depth_attachment=self.ctx.depth_renderbuffer((w, h))
        )
        self.program = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        k = renderer.canvas_matrix
        camera = renderer.camera
        self._uniform("rotation").write(camera.rotation.T.astype("f4").tobytes())  # column-major
        self._uniform("translation").value = tuple(float(v) for v in camera.tvec.ravel())
        self._uniform("intrinsics").value = (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        self._uniform("size").value = (float(w), float(h))
        self._uniform("depth").value = (NEAR_M, FAR_M)
        # the hall with the statics painted in (drawn again here, in depth order with the
        # moving solids), as GL holds images: RGB, bottom row first
        self.background = np.ascontiguousarray(renderer.background[::-1, :, ::-1]).tobytes()
        self._textures: dict[int, moderngl.Texture] = {}

    def draw(self, solids: list[Solid]) -> np.ndarray:
        """The canvas (BGR, canvas size) with the hall behind ``solids`` and the statics."""
        import moderngl

        ctx = self.ctx
        self.fbo.use()
        ctx.clear(depth=1.0)
        self.colour.write(self.background)
        ctx.enable(moderngl.DEPTH_TEST)
        everything = [*self.renderer.statics, *solids]
        faces, decals = _triangles(everything)
        self._uniform("textured").value = False
        if len(faces):
            self._draw(faces)
        # Decals lie on their faces: pulled towards the camera so the face does not win, and
        # drawn without writing depth, layer by layer (a decal's place among its face's
        # decals): a later decal shows over an earlier one on the same face, as the painter
        # draws them, while the solids' depth still hides a decal behind anything nearer.
        ctx.polygon_offset = (-1.0, -4.0)
        self.fbo.depth_mask = False
        for layer in sorted({d[3] for d in decals}):
            here = [d for d in decals if d[3] == layer]
            flat = [d[0] for d in here if d[1] is None]
            self._uniform("textured").value = False
            if flat:
                self._draw(np.concatenate(flat))
            self._uniform("textured").value = True
            for vertices, texture, shade, _ in here:
                if texture is not None:
                    self._texture(texture).use(0)
                    self._uniform("shade").value = shade
                    self._draw(vertices)
        self.fbo.depth_mask = True
        ctx.polygon_offset = (0.0, 0.0)
        w, h = self.renderer.canvas_size
        drawn = np.frombuffer(self.fbo.read(components=3), np.uint8).reshape(h, w, 3)
        return np.ascontiguousarray(drawn[::-1, :, ::-1])  # top row first, BGR

    def _uniform(self, name: str) -> moderngl.Uniform:
        import moderngl

        uniform = self.program[name]
        assert isinstance(uniform, moderngl.Uniform), name
        return uniform

    def _draw(self, vertices: np.ndarray) -> None:
        buffer = self.ctx.buffer(vertices.astype("f4").tobytes())
        vao = self.ctx.vertex_array(
            self.program, [(buffer, "3f 3f 2f", "in_world", "in_colour", "in_uv")]
        )
        vao.render()
        vao.release()
        buffer.release()

    def _texture(self, image: np.ndarray) -> moderngl.Texture:
        key = id(image)
        if key not in self._textures:
            rgb = np.ascontiguousarray(image[:, :, ::-1])
            texture = self.ctx.texture((rgb.shape[1], rgb.shape[0]), 3, rgb.tobytes(), alignment=1)
            texture.build_mipmaps()
            self._textures[key] = texture
        return self._textures[key]

    def release(self) -> None:
        self.ctx.release()


# a decal's vertex rows, its texture (None: flat colour), its face's shade, and its layer
# (its place among its face's decals)
_DecalRows = tuple[np.ndarray, np.ndarray | None, float, int]


def _triangles(
    solids: list[Solid],
) -> tuple[np.ndarray, list[_DecalRows]]:
    """Vertex rows (world xyz, RGB 0-1, uv) of every face, and per decal its rows, texture
    and shade; shaded as ``CameraRenderer._draw_solid`` shades. Back faces are drawn too
    (the depth buffer hides them), so a shape's rows do not depend on where it stands:
    they are built once per shape and moved (a locomotive is the same solids every frame,
    shifted)."""
    rows = []
    decals: list[_DecalRows] = []
    for solid in solids:
        origin = solid.faces[0].corners[0]
        paint = [(f.colour, [(id(d.texture), d.colour) for d in f.decals]) for f in solid.faces]
        key = (solid.corners - origin).round(4).tobytes() + repr(paint).encode()
        if key not in _SHAPES:
            if len(_SHAPES) >= MAX_SHAPES:  # painted-over plates make new shapes each frame
                _SHAPES.clear()
            _SHAPES[key] = _shape_rows(solid, origin)
        face_rows, decal_rows = _SHAPES[key]
        offset = np.zeros(8, np.float32)
        offset[:3] = origin
        rows.append(face_rows + offset)
        decals += [
            (rows + offset, texture, shade, layer) for rows, texture, shade, layer in decal_rows
        ]
    faces = np.concatenate(rows) if rows else np.zeros((0, 8), np.float32)
    return faces, decals


_SHAPES: dict[bytes, tuple[np.ndarray, list[_DecalRows]]] = {}


def _shape_rows(solid: Solid, origin: np.ndarray) -> tuple[np.ndarray, list[_DecalRows]]:
    corners = solid.corners - origin
    _, shades = face_shading(corners)
    colours = np.array([f.colour for f in solid.faces], np.float32)[:, ::-1] / 255.0
    shaded = (colours * shades[:, None]).clip(0, 1)
    tri = corners[:, _TRIANGLES]  # (faces, 6, 3)
    rgb = np.repeat(shaded[:, None], 6, axis=1)
    uv = np.zeros((len(corners), 6, 2), np.float32)
    face_rows = np.concatenate([tri, rgb, uv], axis=2).reshape(-1, 8).astype(np.float32)
    decal_rows = []
    for face, shade in zip(solid.faces, shades.tolist(), strict=True):
        for layer, decal in enumerate(face.decals):
            if decal.texture is None and decal.colour is None:
                continue
            k = len(decal.corners)
            fan = np.array([[0, i, i + 1] for i in range(1, k - 1)]).ravel()
            colour = (0, 0, 0) if decal.colour is None else variety.shade(decal.colour, shade)
            rgb_d = np.tile(np.array(colour[::-1], np.float32) / 255.0, (len(fan), 1))
            uv_d = _QUAD_UV[fan] if k == 4 else np.zeros((len(fan), 2), np.float32)
            rows_d = np.concatenate([decal.corners[fan] - origin, rgb_d, uv_d], axis=1)
            decal_rows.append((rows_d.astype(np.float32), decal.texture, shade, layer))
    return face_rows, decal_rows


def render_gl(
    renderer: CameraRenderer,
    canvas: GlCanvas,
    solids: list[Solid],
    light: Lighting,
    rng: np.random.Generator | None = None,
    finish: bool = True,
) -> np.ndarray:
    """``CameraRenderer.render`` with the canvas rasterized by OpenGL."""
    drawn = [s for s in solids if renderer.sees(s.corners.reshape(-1, 3))]
    return renderer.develop_canvas(canvas.draw(drawn), drawn, light, rng or renderer.rng, finish)
