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
)
