"""CycleGAN: unpaired translation between two image domains, everything about the family in one place."""

from studio.core.family import CliOption, FamilySpec

FAMILY = FamilySpec(
    name="cyclegan",
    title="CycleGAN",
    summary="Two generators translate A to B and back without paired examples; the round trip must "
            "return the input (cycle consistency).",
    model="studio.families.cyclegan.model:build_generators",
    graphs="studio.families.cyclegan.graphs:cyclegan_graphs",
    trainer="studio.families.cyclegan.trainer:CycleGANTrainer",
    panel="studio.families.cyclegan.ui.panel:CycleGanPanel",
    panel_name="cyclegan",
    panel_title="CycleGAN",
    # Domain A defaults to the run's dataset (the MNIST handwritten digits), domain B to printed digits.
    # The shipped checkpoint's recipe (checkpoints/train.sh cyclegan).
    form_defaults={"steps": 6000, "batch_size": 4, "lr": 2e-4,
                   "model": "domain_b=printed, cycle_weight=10, identity_weight=5, semantic_weight=1"},
    cli_options=(
        CliOption("--domain-a", "domain_a", str,
                  "domain A: handwritten, printed or an image folder of any sizes (default: --data)"),
        CliOption("--domain-b", "domain_b", str, "domain B: handwritten, printed (default) or an image folder"),
        CliOption("--fit", "fit", str, "how folder pictures become squares: crop (default), stretch or pad"),
        CliOption("--cycle-weight", "cycle_weight", float, "lambda of the cycle loss, per direction (10)"),
        CliOption("--identity-weight", "identity_weight", float, "weight of the identity loss (5 = 0.5 lambda)"),
        CliOption("--semantic-weight", "semantic_weight", float,
                  "CyCADA semantic loss: the frozen digit classifier must read the translation as the "
                  "input's digit (0: off)"),
        CliOption("--loss", "loss", str, "lsgan (default), ns or hinge"),
        CliOption("--width", "width", int, "generator channels at full resolution (12)"),
        CliOption("--blocks", "blocks", int, "residual blocks in each generator (3)"),
    ),
    preprocessing="digit",
    order=40,
    training_notes=(
        "Two generators, G<sub>AB</sub> and G<sub>BA</sub>, and two discriminators play two games at once. "
        "<b>d_a</b> and <b>d_b</b> are the discriminators' losses (real pictures of a domain against "
        "translations into it, drawn from a pool of the last 50); <b>g_adv</b> is how well both "
        "translations fool them. <b>cycle</b> is the mean absolute difference between a picture and its "
        "round trip (A&rarr;B&rarr;A and B&rarr;A&rarr;B, on a 0..1 scale): it is what makes the "
        "translation keep the content, since no paired examples say what the right answer is. "
        "<b>identity</b> asks each generator to leave a picture already in its target domain alone. "
        "With the semantic loss on, <b>semantic</b> is the frozen digit classifier's cross-entropy of "
        "the input's digit on the translation (CyCADA): plain CycleGAN may keep a round trip perfect "
        "and still turn a 4 into a 9, hiding the difference in faint detail."),
    training_equations=(
        r"L_{D_B} = \frac{1}{2}\mathbb{E}_b[(D_B(b) - 1)^2] + \frac{1}{2}\mathbb{E}_a[D_B(G_{AB}(a))^2]"
        r"\quad \mathrm{(LSGAN;\ same\ for\ } D_A)",
        r"L_{adv} = \mathbb{E}_a[(D_B(G_{AB}(a)) - 1)^2] + \mathbb{E}_b[(D_A(G_{BA}(b)) - 1)^2]",
        r"L_{cyc} = \lambda\,\mathbb{E}_a\|G_{BA}(G_{AB}(a)) - a\|_1 + \lambda\,\mathbb{E}_b\|G_{AB}(G_{BA}(b)) - b\|_1",
        r"L_{idt} = \lambda_{idt}\,(\mathbb{E}_b\|G_{AB}(b) - b\|_1 + \mathbb{E}_a\|G_{BA}(a) - a\|_1)",
        r"L_{sem} = \lambda_{sem}\,(\mathrm{CE}(f(G_{AB}(a)), y_a) + \mathrm{CE}(f(G_{BA}(b)), y_b))",
        r"L_G = L_{adv} + L_{cyc} + L_{idt} + L_{sem}",
    ),
)
