"""What the CycleGAN panel's Explain pane says, filled with the numbers of the picture on screen.

A plain function of the panel's state (no Qt): the pane shows the sentences and draws the formulas.
"""

from __future__ import annotations

from studio.families.cyclegan.facts import fid_scale, semantic_comparison
from studio.families.cyclegan.state import CyclePanelState

ADVERSARIAL = (r"\mathcal{L}_{GAN}(G_{AB}, D_B) = \mathbb{E}_b\,[(D_B(b) - 1)^2]"
               r" + \mathbb{E}_a\,[D_B(G_{AB}(a))^2]")
CYCLE = (r"\mathcal{L}_{cyc} = \mathbb{E}_a\,\|G_{BA}(G_{AB}(a)) - a\|_1"
         r" + \mathbb{E}_b\,\|G_{AB}(G_{BA}(b)) - b\|_1")
IDENTITY = r"\mathcal{L}_{idt} = \mathbb{E}_b\,\|G_{AB}(b) - b\|_1 + \mathbb{E}_a\,\|G_{BA}(a) - a\|_1"

INTRO = (
    "CycleGAN learns to translate between two domains without a single paired example. "
    "Two generators do it: <b>G<sub>AB</sub></b> turns A into B and <b>G<sub>BA</sub></b> turns B into A. "
    "The <b>adversarial</b> losses (least squares here) make each translation pass for its target domain "
    "in the eyes of a discriminator (D<sub>B</sub>, D<sub>A</sub>). Nothing in them says <i>which</i> "
    "picture of the target domain to make; the <b>cycle</b> loss does: translating there and back must "
    "return the input, so the translation has to keep what the input was. The <b>identity</b> loss asks a "
    "generator to leave a picture already in its target domain alone."
)


def _total(state: CyclePanelState) -> str:
    m = state.model
    cycle, identity = (m.cycle_weight, m.identity_weight) if m else (10.0, 5.0)
    total = (r"\mathcal{L} = \mathcal{L}_{GAN}(G_{AB}, D_B) + \mathcal{L}_{GAN}(G_{BA}, D_A)"
             rf" + {cycle:g}\,\mathcal{{L}}_{{cyc}}")
    if identity > 0:
        total += rf" + {identity:g}\,\mathcal{{L}}_{{idt}}"
    if m is not None and m.semantic_weight > 0:
        total += rf" + {m.semantic_weight:g}\,\mathcal{{L}}_{{sem}}"
    return total


def explain(state: CyclePanelState) -> tuple[str, list[str]]:
    """(sentences as rich text, formulas in mathtext) for the state on screen."""
    lines = [INTRO]
    equations = [ADVERSARIAL, CYCLE, IDENTITY, _total(state)]
    m = state.model
    if m is not None and m.semantic_weight > 0:
        lines.append("This model also trained with the <b>semantic</b> loss (CyCADA): a frozen digit classifier "
                     "must read the translation as the input's digit, which plain CycleGAN does not promise.")
    elif m is not None:
        lines.append("This model trained <b>without</b> the semantic loss: nothing but the cycle asks the "
                     "translation to keep the digit, so it may turn a 4 into a 9 and still come back as a 4.")
    if m is not None and m.identity_weight == 0:
        lines.append("The <b>identity</b> loss is off in this model (weight 0): nothing asks a generator to leave "
                     "its own domain's pictures alone. The paper uses it to keep colours, which grey digits do "
                     "not need, and it holds a translation to the input's shapes.")
    scale = fid_scale(m) if m is not None else ""
    if scale:
        lines.append(scale)
    if m is not None and state.partner is not None:
        lines.append(semantic_comparison(m, state.partner)
                     + " The <b>Semantic loss</b> switch translates the same picture with the other model.")
    image = state.current()
    if image is None:
        lines.append("<i>Drop a picture to see the round trip measured.</i>")
        return "<p>" + "</p><p>".join(lines) + "</p>", equations
    source, target = state.domains()
    there, back = state.generators()
    there_tex, back_tex = there.replace("_", "_{") + "}", back.replace("_", "_{") + "}"
    there_html, back_html = (g.replace("_", "<sub>") + "</sub>" for g in (there, back))
    lines.append(
        f"For <b>{image.name}</b> ({source} → {target}): the round trip {back_html}({there_html}(x)) differs from x "
        f"by <b>{image.cycle_l1:.3f}</b> on average (0..1 per pixel), the translation {there_html}(x) by "
        f"<b>{image.translation_l1:.3f}</b>: {state.cycle_verdict()}.")
    if image.readings is not None:
        r = image.readings
        kept = r.translation.label == r.input.label
        lines.append(f"The digit classifier reads {r.input.label} → {r.translation.label} → "
                     f"{r.reconstruction.label}: the translation "
                     + ("keeps the digit." if kept else "changed the digit, the failure the semantic loss targets."))
    equations.append(rf"\|{back_tex}({there_tex}(x)) - x\|_1 = {image.cycle_l1:.3f}"
                     rf"\quad \|{there_tex}(x) - x\|_1 = {image.translation_l1:.3f}")
    return "<p>" + "</p><p>".join(lines) + "</p>", equations
