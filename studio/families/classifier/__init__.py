"""The studio digit classifier: the feature extractor behind FID, KID, IS and precision/recall."""

from studio.core.family import FamilySpec

FAMILY = FamilySpec(
    name="classifier",
    title="Digit classifier",
    summary="A small CNN that reads digits; its penultimate layer is the feature space of FID and KID.",
    model="studio.families.classifier.model:build_classifier",
    graphs="studio.families.classifier.graphs:classifier_graphs",
    trainer="studio.families.classifier.trainer:ClassifierTrainer",
    form_defaults={"steps": 4000, "batch_size": 128, "lr": 2e-3, "model": ""},
    preprocessing="digit",
    order=90,
    training_notes=(
        "<b>loss</b> is the cross-entropy of the true digit under the classifier's softmax; "
        "<b>accuracy</b> is the share of the batch read correctly. Its penultimate layer becomes "
        "the feature space of FID and KID, so a well-trained classifier makes those numbers meaningful."),
    training_equations=(r"L = -\log \mathrm{softmax}(f_\theta(x))_y",),
)
