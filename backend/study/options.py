"""The study's methods and what one run can be told, validated once."""

from __future__ import annotations

from dataclasses import dataclass, replace

# name -> (features, head, order). "Features" is an encoder objective, or "raw"/"pca" (no encoder).
METHODS: dict[str, tuple[str, str, str]] = {
    "raw+lr": ("raw", "logreg", "random"),
    "pca+lr": ("pca", "logreg", "random"),
    "ae+lr": ("autoencoder", "logreg", "random"),
    "aug-ae+lr": ("augmented-autoencoder", "logreg", "random"),
    "aug-ae+spread": ("augmented-autoencoder", "spreading", "random"),
    "contrastive+lr": ("contrastive", "logreg", "random"),
    "contrastive+spread": ("contrastive", "spreading", "random"),
    "contrastive+spread+coldstart": ("contrastive", "spreading", "coldstart"),
}
DEFAULT_METHOD = "contrastive+spread"  # what DALT's defaults (DALT_HEAD, encoder objective) amount to
QUICK_METHODS = ("raw+lr", "ae+lr", "contrastive+lr", "contrastive+spread", "contrastive+spread+coldstart")
TARGETS = (0.90, 0.95, 0.97)
ORDERS = ("random", "sorted", "both")
# Label counts at which a head is always trained, so every method has a rest accuracy at these points.
CHECKPOINTS = frozenset((10, 20, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000, 1500,
                         2000, 3000, 4000))
BASE_PID = 9_000_000  # study projects; far from real Label Studio ids in case --redis-url is shared


@dataclass(frozen=True)
class StudyOptions:
    """One study run; the defaults are those of the published study (``make study``).

    ``methods=None`` means every method (or :data:`QUICK_METHODS` with ``quick``); ``quick`` shrinks the
    run (400 tasks, 3-epoch encoders, blocks of 100, eager 50, growth at least 10%) when :meth:`resolved` applies it.
    """

    dataset: str
    methods: tuple[str, ...] | None = None
    default_method: str = DEFAULT_METHOD
    quick: bool = False
    limit: int | None = None  # only the first N tasks of the shuffled dataset
    seed: int = 0  # task order, encoder weights, k-means
    steps: int | None = None  # encoder budget (None: encoder.settings.TrainBudget's defaults)
    min_steps: int | None = None
    max_seconds: float | None = None  # None: no wall-clock cap (results must not depend on the machine's load)
    patience: int | None = None  # evaluations (every 50 steps) without improvement, after min_steps
    epochs: int | None = None  # extra cap in passes over the images (quick runs)
    encoder_batch: int = 256  # images per encoder training step
    latent_dim: int = 32
    image_size: int = 28  # image side for a folder dataset
    # "random": shuffled (seeded); "sorted": file order, e.g. one class after another; "both": every method
    # replayed in both orders on the same features (reported as "method@random" and "method@sorted")
    order: str = "random"
    augment: str = "auto"  # encoder augmentation policy (encoder.augment.POLICIES)
    threads: int = 2  # torch threads for encoder training
    eager: int = 100  # retrain after every label up to this many
    growth: float = 0.05  # then retrain when labels grew by this fraction (0: after every label)
    clusters: int | None = None  # cold-start clusters (default: 5 per class, at least 10)
    block: int = 500  # tasks per acceptance block
    redis_url: str | None = None  # None: a private redis-server for the run
    progress: bool = True

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"unknown order {self.order!r}; known: {', '.join(ORDERS)}")
        unknown = [m for m in self.methods or () if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")

    def resolved(self) -> StudyOptions:
        """The options the run uses: the method list filled in, and ``quick``'s smaller sizes applied."""
        methods = self.methods or (QUICK_METHODS if self.quick else tuple(METHODS))
        if not self.quick:
            return replace(self, methods=tuple(methods))
        return replace(self, methods=tuple(methods), limit=self.limit or 400, epochs=min(self.epochs or 3, 3),
                       block=min(self.block, 100), eager=min(self.eager, 50), growth=max(self.growth, 0.1))

