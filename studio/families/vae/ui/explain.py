"""What the VAE explorer's Explain pane says, filled with the numbers on screen.

Plain functions of the explorer's state (no Qt): the pane shows the sentences
and draws the formulas.
"""

from __future__ import annotations

from studio.families.vae.state import INACTIVE_KL, VaeExplorerState

ELBO_EQUATION = (r"-\mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}\left[-\log\,p(x|z)\right]"
                 r" + \mathrm{KL}\left(q(z|x)\,\|\,p(z)\right)")
REPARAM_EQUATION = r"z = \mu + \sigma \odot \epsilon,\quad \epsilon \sim \mathcal{N}(0,\, I)"

INTRO = (
    "The <b>encoder</b> turns an image <i>x</i> into a Gaussian q(z|x) = N(μ, σ²) over the latent "
    "code; the <b>decoder</b> turns a code <i>z</i> back into pixel probabilities. Training "
    "maximises the ELBO: reconstruct <i>x</i> well (the <b>reconstruction</b> term) while keeping "
    "q(z|x) close to the prior N(0, I) (the <b>KL</b> term, what the code costs in nats). "
    "A sample is drawn as z = μ + σ·ε so the gradient can flow through μ and σ."
)


def explain(state: VaeExplorerState) -> tuple[str, list[str]]:
    """(sentences as rich text, formulas in mathtext) for the state on screen."""
    lines = [INTRO]
    if state.dim_kl is not None:
        top = state.top_dims(2)
        off = state.inactive_dims()
        usage = (f"Average KL per dimension over {state.kl_source}: most used "
                 + ", ".join(f"z[{i}] ({state.dim_kl[i]:.2f} nats)" for i in top) + ".")
        if off:
            usage += (f" {len(off)} dimension(s) below {INACTIVE_KL} nats are <b>inactive</b> "
                      "(posterior collapse): the decoder ignores them.")
        lines.append(usage)
    equations = [ELBO_EQUATION]
    e = state.elbo
    if e is None:
        lines.append("<i>Measuring the image on screen…</i>")
        return "<p>" + "</p><p>".join(lines) + "</p>", equations + [REPARAM_EQUATION]
    lines.append(f"For <b>{e.about}</b>: reconstruction {e.recon_nats:.1f} nats + KL {e.kl_nats:.1f} nats "
                 f"= −ELBO {e.neg_elbo:.1f} nats (σ below 1 means the image pins z down more "
                 "tightly than the prior does).")
    equations.append(rf"{e.neg_elbo:.1f} = {e.recon_nats:.1f} + {e.kl_nats:.1f}\ \ \mathrm{{nats}}")
    equations.append(REPARAM_EQUATION)
    dims = state.top_dims(2) if state.latent_dim > 2 else list(range(state.latent_dim))
    parts = [rf"z_{{{i}}} = {e.mu[i]:.2f} + {e.sigma[i]:.2f}\,\epsilon_{{{i}}}" for i in dims]
    equations.append(r",\quad ".join(parts))
    return "<p>" + "</p><p>".join(lines) + "</p>", equations
