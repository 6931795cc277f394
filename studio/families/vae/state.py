"""What the VAE explorer shows, as plain data: no Qt, so the logic is testable alone.

The panel's widgets bind to one ``VaeExplorerState`` (as napari binds its widgets
to layer models): a gesture changes the state through a method here, and the
panel redraws from the state. Everything that must stay consistent when the
checkpoint changes (map axes in range, interpolation endpoints and the encoded
pair of the old model dropped) is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.engine.latent import plane_point, plane_uv

SPAN = 3.0  # the sliders and the map cover +-3 prior standard deviations
MAP_GRID = 15  # the manifold map is MAP_GRID x MAP_GRID decoded images
# Below this average KL (nats) a latent dimension carries almost no information about
# the image: the encoder leaves it at the prior (posterior collapse).
INACTIVE_KL = 0.05


@dataclass
class EncodedImage:
    """An image the user dropped or pasted, and what the encoder made of it."""

    name: str
    mu: np.ndarray
    sigma: np.ndarray
    recon_nats: float | None = None  # E_q[-log p(x|z)], filled in when measured
    kl_nats: float | None = None  # KL(q(z|x) || p(z))


@dataclass
class ImageElbo:
    """The ELBO's two terms for one image, and the encoder's posterior for it."""

    recon_nats: float
    kl_nats: float
    mu: np.ndarray
    sigma: np.ndarray
    about: str  # "the decoded image" or the encoded file's name

    @property
    def neg_elbo(self) -> float:
        return self.recon_nats + self.kl_nats


@dataclass
class VaeExplorerState:
    checkpoint: str | None = None
    latent_dim: int = 0
    z: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    map_dims: tuple[int, int] = (0, 1)
    z_a: np.ndarray | None = None
    z_b: np.ndarray | None = None
    interp_mode: str = "linear"
    interp_steps: int = 10
    encoded: EncodedImage | None = None
    dim_kl: np.ndarray | None = None  # average KL per latent dimension (nats)
    kl_source: str = ""  # what dim_kl was averaged over
    elbo: ImageElbo | None = None  # for the image on screen

    # --- the checkpoint -------------------------------------------------------------
    def open(self, checkpoint: str, latent_dim: int) -> None:
        """A new model: everything that belonged to the old one goes."""
        if latent_dim < 1:
            raise ValueError(f"latent size {latent_dim} must be at least 1")
        self.checkpoint = checkpoint
        self.latent_dim = int(latent_dim)
        self.z = np.zeros(self.latent_dim, np.float32)
        self.map_dims = (0, min(1, self.latent_dim - 1))
        self.z_a = self.z_b = None
        self.encoded = None
        self.dim_kl = None
        self.kl_source = ""
        self.elbo = None

    @property
    def map_axes_editable(self) -> bool:
        """Only a latent with more than two dimensions has a choice of map axes."""
        return self.latent_dim > 2

    # --- latent usage ----------------------------------------------------------------
    def set_dim_kl(self, kl, source: str = "") -> None:
        """Average KL per dimension arrived: the map's axes become the two most active."""
        kl = np.asarray(kl, dtype=np.float64)
        if kl.shape != (self.latent_dim,):
            raise ValueError(f"{kl.shape[0] if kl.ndim else 0} KL values for a {self.latent_dim}-D latent")
        self.dim_kl = kl
        self.kl_source = source
        order = self.slider_order()
        if self.latent_dim >= 2:
            self.map_dims = tuple(sorted(order[:2]))  # x the lower index: a 2-D map keeps z[0] across

    def slider_order(self) -> list[int]:
        """Dimensions from the most to the least used (index order until the KL is known)."""
        if self.dim_kl is None:
            return list(range(self.latent_dim))
        return [int(i) for i in np.argsort(-self.dim_kl, kind="stable")]

    def is_inactive(self, dim: int) -> bool:
        return self.dim_kl is not None and float(self.dim_kl[dim]) < INACTIVE_KL

    def inactive_dims(self) -> list[int]:
        return [i for i in range(self.latent_dim) if self.is_inactive(i)]

    def dim_label(self, dim: int) -> str:
        if self.dim_kl is None:
            return f"z[{dim}]"
        return f"z[{dim}]  KL {self.dim_kl[dim]:.2f}"

    def dim_tooltip(self, dim: int) -> str:
        base = f"z[{dim}]: prior N(0, 1), slider range ±{SPAN:g} sigma"
        if self.dim_kl is None:
            return base
        kl = float(self.dim_kl[dim])
        if kl < INACTIVE_KL:
            return (f"{base}\ninactive (posterior collapse): average KL {kl:.3f} nats over {self.kl_source}. "
                    "The encoder ignores this dimension, so moving it changes the image little.")
        return f"{base}\naverage KL {kl:.2f} nats over {self.kl_source}: how much the code uses it"

    # --- the map ---------------------------------------------------------------------
    def set_map_dims(self, x: int, y: int) -> tuple[int, int]:
        """Choose the map's axes; the same dimension twice swaps the other axis away."""
        hi = self.latent_dim - 1
        x, y = int(np.clip(x, 0, hi)), int(np.clip(y, 0, hi))
        if x == y and self.latent_dim >= 2:
            old_x, old_y = self.map_dims
            # The user moved one axis onto the other: give the other the old value.
            if x != old_x:
                y = old_x if old_x != x else (x + 1) % self.latent_dim
            else:
                x = old_y if old_y != y else (y + 1) % self.latent_dim
        self.map_dims = (x, y)
        return self.map_dims

    def map_slice(self) -> tuple:
        """What the map depends on: its axes and every latent value off them."""
        x, y = self.map_dims
        return (self.map_dims,) + tuple(round(float(v), 6) for i, v in enumerate(self.z) if i not in (x, y))

    def map_marker(self) -> tuple[float, float]:
        """Where z is on the map, as normalised picture coordinates (u right, v down)."""
        x, y = self.map_dims
        return plane_uv(float(self.z[x]), float(self.z[y]), SPAN)

    def set_map_point(self, u: float, v: float) -> np.ndarray:
        """A click on the map (normalised coordinates) moves z along the map's two axes."""
        return self.set_plane_point(*plane_point(u, v, SPAN))

    def set_plane_point(self, x: float, y: float) -> np.ndarray:
        z = self.z.copy()
        dx, dy = self.map_dims
        z[dx], z[dy] = x, y
        return self.set_z(z)

    # --- z ---------------------------------------------------------------------------
    def set_z(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape != (self.latent_dim,):
            raise ValueError(f"a {z.shape[0]}-D point for a {self.latent_dim}-D latent")
        self.z = np.clip(z, -SPAN, SPAN).astype(np.float32)
        return self.z

    # --- interpolation ---------------------------------------------------------------
    def set_endpoint(self, which: str, z=None) -> None:
        value = (self.z if z is None else np.asarray(z, np.float32)).copy()
        if which == "a":
            self.z_a = value
        elif which == "b":
            self.z_b = value
        else:
            raise ValueError(f"endpoint '{which}' is neither 'a' nor 'b'")

    def interpolation_ready(self) -> bool:
        return self.z_a is not None and self.z_b is not None

    def interpolation_hint(self) -> str:
        """What to do next, for the empty strip."""
        if self.z_a is None and self.z_b is None:
            return "Set A and B (or drop two images) to interpolate"
        return "Now set " + ("B" if self.z_b is None else "A")

    # --- the encoded pair ------------------------------------------------------------
    def set_encoded(self, name: str, mu, sigma) -> EncodedImage:
        self.encoded = EncodedImage(name, np.asarray(mu, np.float32), np.asarray(sigma, np.float32))
        self.set_z(np.clip(self.encoded.mu, -SPAN, SPAN))
        return self.encoded

    def encoded_summary(self, shown: int = 4) -> str:
        e = self.encoded
        if e is None:
            return ""
        mu = ", ".join(f"{v:+.2f}" for v in e.mu[:shown]) + (" …" if len(e.mu) > shown else "")
        text = f"{e.name}: μ = ({mu})"
        if e.recon_nats is not None and e.kl_nats is not None:
            text += (f"; −ELBO {e.recon_nats + e.kl_nats:.1f} nats = reconstruction {e.recon_nats:.1f}"
                     f" + KL {e.kl_nats:.1f}")
        return text

    # --- the ELBO of the image on screen ---------------------------------------------
    def set_elbo(self, recon_nats: float, kl_nats: float, mu, sigma, about: str) -> ImageElbo:
        self.elbo = ImageElbo(float(recon_nats), float(kl_nats), np.asarray(mu, np.float32),
                              np.asarray(sigma, np.float32), about)
        if self.encoded is not None and about == self.encoded.name:
            self.encoded.recon_nats, self.encoded.kl_nats = self.elbo.recon_nats, self.elbo.kl_nats
        return self.elbo

    def top_dims(self, count: int = 2) -> list[int]:
        return self.slider_order()[:count]
