"""MLP architectures, the paper's search space and its train / held-out split, and width tokens.

An :class:`Architecture` is the chain ``input -> h_1 -> ... -> h_L -> output`` of a plain MLP
(paper Sec. 5.1.1: "the architecture a in V^S is a sequence of discrete tokens").

The paper's search space (Sec. 6 and Appendix A) is four hidden layers with widths in {16, 32, 64}.
The text says it partitions "72 distinct topological configurations into 64 training architectures
and 8 held-out", and that "architectures with a width of 16 at depths 3 and 4 are excluded".
Read literally (h3 == h4 == 16 excluded) that leaves 81 - 9 = 72 configurations, but one of the
paper's own held-out architectures, [32, 16, 16, 16], breaks that rule. Our reading, defined here
and nowhere else:

* ``search_space()``: all 3^4 = 81 width tuples.
* ``excluded``: h3 == h4 == 16, **except** [32, 16, 16, 16], which the paper evaluates as held-out
  (8 excluded architectures).
* ``held_out``: the five known held-out architectures plus three more, drawn by a fixed seeded
  permutation of the remaining candidates (8 held-out).
* ``validation``: one more architecture from the same permutation, used for model selection and
  never trained on, so that ``train`` has exactly the paper's 64 architectures.
* ``train``: everything else (64). 64 + 8 = the paper's "72 configurations"; 72 + 1 + 8 = 81.

The ``varied`` split (:func:`varied_split`) spans widths *and* depths, so that one generator can be asked for
widths and depths it never saw. Hidden widths lie on the grid 8, 16, ..., 64 (multiples of 8 up to the
canvas C = 64) and depths run from 2 to 6 hidden layers; the full product (8^2 + ... + 8^6, about 300,000
tuples) is far too large to train or evaluate, so the split *samples* it with a fixed seed:

* **held out entirely**: the widths 24 and 56 (no train or validation architecture contains them) and the
  depth 5 (no train or validation architecture has it). The other widths {8, 16, 32, 40, 48, 64} and depths
  {2, 3, 4, 6} are the *seen* ones;
* per seen depth, from the tuples of seen widths (a seeded sample): 2 ``combination`` test
  architectures (seen widths at a seen depth, but that tuple is never trained), 1 validation
  architecture, then 16 train architectures (64 train, 4 validation);
* ``held_out`` test architectures, each with a ``category``: ``combination`` (the 8 above); ``width``
  (per seen depth one tuple of seen widths with one position set to 24 and one with a position set to 56:
  8); ``depth`` (6 tuples of seen widths at depth 5); ``width_and_depth`` (2 at depth 5 holding 24 or 56).
  24 test architectures in all; 64 + 4 + 24 = 92 listed architectures;
* tuples of the grid that were not drawn are ``unlisted`` (:meth:`ArchitectureSplit.role`); nothing is
  ``excluded``.

The ``varied-all-depths`` split (:func:`varied_all_depths_split`) is ``varied`` with the depth 5 moved into
training: the same draws, then (continuing the same random stream) 16 train and 1 validation architectures of
seen widths at depth 5; the 6 + 2 depth-5 test architectures stay held out, now as ``combination`` and ``width``
(their depth is seen). A model trained on it serves depths 2-6; the widths 24 and 56 stay held out.

The ``varied-dense`` split (:func:`varied_dense_split`) is ``varied-all-depths`` with more train architectures per
depth: up to 48 more tuples of seen widths at every depth (depth 2 has only 36 such tuples, so it gets the rest of
them), drawn from a stream of their own, so that each depth has about as many train architectures as the paper's
single depth (64). Every architecture of ``varied-all-depths`` keeps its role; the test architectures are the same.

:func:`get_split` returns a split by name (``"paper"``, the default everywhere, ``"varied"``,
``"varied-all-depths"`` or ``"varied-dense"``).
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from dataclasses import dataclass, field, replace
from typing import Iterable, Literal, Sequence, get_args

from nnit.errors import NNiTError

ACTIVATIONS = ("tanh", "relu", "gelu", "silu")

PAPER_WIDTHS = (16, 32, 64)
PAPER_DEPTH = 4
KNOWN_HELD_OUT = (
    (32, 32, 16, 64),
    (32, 32, 32, 64),
    (32, 16, 16, 16),
    (16, 16, 16, 32),
    (16, 64, 64, 32),
)
SPLIT_SEED = 2603  # the seed of the permutation that draws the extra held-out and validation archs

VARIED_WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64)
"""The width grid of the ``varied`` split: multiples of 8 up to the canvas C = 64."""
VARIED_DEPTHS = (2, 3, 4, 5, 6)
"""The depths (hidden layers) of the ``varied`` split."""
VARIED_HELD_OUT_WIDTHS = (24, 56)
"""Widths that no train or validation architecture of the ``varied`` split contains."""
VARIED_HELD_OUT_DEPTHS = (5,)
"""Depths that no train or validation architecture of the ``varied`` split has."""
VARIED_SEED = 2604
"""The seed of the ``varied`` split's draws."""

SplitName = Literal["paper", "varied", "varied-all-depths", "varied-dense"]
"""The names :func:`get_split` knows (the choices of ``--split``)."""


class ArchitectureError(NNiTError):
    """An architecture string or width that cannot be used."""


@dataclass(frozen=True)
class Architecture:
    """A plain MLP ``input_dim -> hidden[0] -> ... -> hidden[-1] -> output_dim``.

    The activation follows every hidden layer; the output layer is linear (a policy's output is
    squashed by the task, a classifier's output is logits).
    """

    input_dim: int
    """Size of the observation / flattened image."""
    hidden: tuple[int, ...]
    """Widths of the hidden layers, in order."""
    output_dim: int
    """Size of the action / number of classes."""
    activation: str = "tanh"
    """Nonlinearity after every hidden layer: one of tanh, relu, gelu, silu."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        dims = (self.input_dim, *self.hidden, self.output_dim)
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ArchitectureError(f"every layer width must be a positive integer, got {dims}")
        if self.activation not in ACTIVATIONS:
            raise ArchitectureError(
                f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(
        cls, text: str, input_dim: int, output_dim: int, activation: str = "tanh"
    ) -> "Architecture":
        """Parse hidden widths such as ``"32,16,64,32"`` (also ``"[32, 16, 64, 32]"``).

        The input and output dims come from the task.
        """
        cleaned = str(text).strip().strip("[]()")
        parts = [p.strip() for p in cleaned.split(",")]
        if parts == [""]:
            raise ArchitectureError(f"empty architecture string {text!r}; expected e.g. '32,16,64,32'")
        try:
            hidden = tuple(int(p) for p in parts)
        except ValueError:
            raise ArchitectureError(
                f"cannot parse architecture {text!r}: widths must be integers separated by commas, "
                "e.g. '32,16,64,32'"
            ) from None
        if any(h <= 0 for h in hidden):
            raise ArchitectureError(f"architecture {text!r} has a non-positive width")
        return cls(int(input_dim), hidden, int(output_dim), activation)

    # ------------------------------------------------------------------ views
    @property
    def widths(self) -> tuple[int, ...]:
        """All layer sizes including input and output: (input, h_1, ..., h_L, output)."""
        return (self.input_dim, *self.hidden, self.output_dim)

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.hidden)

    @property
    def num_layers(self) -> int:
        """Number of linear layers (weight matrices) = depth + 1."""
        return len(self.hidden) + 1

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(out_features, in_features)`` of every linear layer, as in ``nn.Linear.weight``."""
        w = self.widths
        return [(w[i + 1], w[i]) for i in range(len(w) - 1)]

    @property
    def num_params(self) -> int:
        """Total number of weights and biases."""
        return sum(o * i + o for o, i in self.layer_shapes)

    def hidden_str(self) -> str:
        """The hidden widths as ``"32,16,64,32"`` (the CLI's ``--arch`` form)."""
        return ",".join(str(h) for h in self.hidden)

    def __str__(self) -> str:
        return f"{self.input_dim}-[{self.hidden_str()}]-{self.output_dim}"

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict:
        return {
            "input_dim": self.input_dim,
            "hidden": list(self.hidden),
            "output_dim": self.output_dim,
            "activation": self.activation,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        try:
            return cls(
                int(data["input_dim"]),
                tuple(int(h) for h in data["hidden"]),
                int(data["output_dim"]),
                str(data.get("activation", "tanh")),
            )
        except (KeyError, TypeError) as err:
            raise ArchitectureError(f"malformed architecture record {data!r}: {err}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Architecture":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise ArchitectureError(f"architecture metadata is not JSON: {err}") from None


# ---------------------------------------------------------------------- search space and split
Hidden = tuple[int, ...]


@dataclass(frozen=True)
class ArchitectureSplit:
    """A search space split into train / held-out / validation / excluded hidden-width tuples."""

    train: tuple[Hidden, ...]
    """Architectures a generator trains on (and the GHN ensemble always)."""
    held_out: tuple[Hidden, ...]
    """Test architectures: never trained on by the generator; their kind is in :attr:`categories`."""
    validation: tuple[Hidden, ...]
    """Architectures for model selection, never trained on."""
    excluded: tuple[Hidden, ...]
    """Architectures of the space that the split leaves out on purpose (the paper's h3 == h4 == 16 rule)."""
    rule: str = field(default="", compare=False)
    """How the split was drawn, in words."""
    name: str = "paper"
    """The split's name (:func:`get_split`)."""
    widths: tuple[int, ...] = PAPER_WIDTHS
    """The width grid of the search space (the decoding grid of joint sampling)."""
    depths: tuple[int, ...] = (PAPER_DEPTH,)
    """The depths (hidden layers) of the search space."""
    held_out_widths: tuple[int, ...] = ()
    """Grid widths that no train or validation architecture contains."""
    held_out_depths: tuple[int, ...] = ()
    """Depths that no train or validation architecture has."""
    categories: tuple[tuple[Hidden, str], ...] = ()
    """(held-out architecture, category) pairs: ``width`` (holds a held-out width at a seen depth), ``depth``
    (seen widths at a held-out depth), ``width_and_depth`` (both) or ``combination`` (seen widths at a seen
    depth, only the tuple is new)."""

    def role(self, hidden: Sequence[int]) -> str:
        """'train', 'held_out', 'validation', 'excluded'; 'unlisted' (in the search space, not drawn by a
        sampled split) or 'outside' (a width off the grid or a depth outside the space)."""
        h = tuple(int(w) for w in hidden)
        for name in ("train", "held_out", "validation", "excluded"):
            if h in getattr(self, name):
                return name
        if len(h) in self.depths and all(w in self.widths for w in h):
            return "unlisted"
        return "outside"

    def category(self, hidden: Sequence[int]) -> str | None:
        """The category of a held-out architecture (None for every other)."""
        return dict(self.categories).get(tuple(int(w) for w in hidden))

    def by_category(self) -> dict[str, list[Hidden]]:
        """The held-out architectures grouped by category (categories in first-seen order)."""
        out: dict[str, list[Hidden]] = {}
        for h, c in self.categories:
            out.setdefault(c, []).append(h)
        return out

    def listed(self, roles: Iterable[str] = ("train", "held_out", "validation", "excluded")) -> list[Hidden]:
        """Every architecture of ``roles``, ordered by depth then widths (for the paper's split and every role:
        exactly :func:`search_space`'s order)."""
        return sorted({h for r in roles for h in getattr(self, r)}, key=lambda h: (len(h), h))


def hidden_label(hidden: Iterable[int]) -> str:
    """``"h32-16-64-32"``: how file and stage names spell one architecture's hidden widths (dataset shards,
    ``nnit generate`` outputs, ``nnit reproduce`` stages)."""
    return "h" + "-".join(str(int(h)) for h in hidden)


def search_space(widths: Iterable[int] = PAPER_WIDTHS, depth: int = PAPER_DEPTH) -> list[tuple[int, ...]]:
    """All hidden-width tuples of the given depth over ``widths`` (lexicographic order)."""
    return [tuple(c) for c in itertools.product(sorted(widths), repeat=depth)]


def paper_split(seed: int = SPLIT_SEED) -> ArchitectureSplit:
    """The deterministic 64 / 8 / 1 / 8 split of the paper's 81 architectures (module docstring)."""
    space = search_space()
    known = set(KNOWN_HELD_OUT)
    excluded = [h for h in space if h[2] == 16 and h[3] == 16 and h not in known]
    candidates = [h for h in space if h not in known and h not in excluded]
    drawn = list(candidates)
    random.Random(seed).shuffle(drawn)
    held_out = list(KNOWN_HELD_OUT) + sorted(drawn[:3])
    validation = drawn[3:4]
    chosen = set(held_out) | set(validation)
    train = [h for h in candidates if h not in chosen]
    assert len(train) == 64 and len(held_out) == 8, (len(train), len(held_out))
    return ArchitectureSplit(
        train=tuple(train),
        held_out=tuple(held_out),
        validation=tuple(validation),
        excluded=tuple(excluded),
        rule=(
            "81 = {16,32,64}^4; excluded: h3 == h4 == 16 except the paper's held-out [32,16,16,16]; "
            f"held-out: 5 from the paper + 3 drawn with seed {seed}; validation: 1 more; train: the rest"
        ),
        name="paper",
        categories=tuple((h, "combination") for h in held_out),
    )


def varied_split(
    seed: int = VARIED_SEED,
    train_per_depth: int = 16,
    validation_per_depth: int = 1,
    combination_per_depth: int = 2,
    depth_archs: int = 6,
) -> ArchitectureSplit:
    """The deterministic ``varied`` split over widths :data:`VARIED_WIDTHS` and depths :data:`VARIED_DEPTHS`
    (module docstring): widths :data:`VARIED_HELD_OUT_WIDTHS` and depths :data:`VARIED_HELD_OUT_DEPTHS` never
    appear in train or validation; per seen depth ``combination_per_depth`` test, ``validation_per_depth``
    validation and ``train_per_depth`` train architectures are drawn from the tuples of seen widths; the held-out
    width / depth test architectures are drawn as described there. One ``random.Random(seed)`` stream, used in a
    fixed order, draws everything."""
    rng = random.Random(seed)
    seen_w = tuple(w for w in VARIED_WIDTHS if w not in VARIED_HELD_OUT_WIDTHS)
    seen_d = tuple(d for d in VARIED_DEPTHS if d not in VARIED_HELD_OUT_DEPTHS)
    train: list[Hidden] = []
    validation: list[Hidden] = []
    categories: list[tuple[Hidden, str]] = []
    taken: set[Hidden] = set()

    def with_width(depth: int, width: int) -> Hidden:
        """A new tuple of seen widths with one random position set to ``width``."""
        while True:
            h = [rng.choice(seen_w) for _ in range(depth)]
            h[rng.randrange(depth)] = width
            if tuple(h) not in taken:
                return tuple(h)

    def draw(depth: int, k: int) -> list[Hidden]:
        """``k`` distinct tuples of seen widths of ``depth``: ``rng.sample`` of :func:`search_space`'s
        (lexicographic) list, without building that list."""
        n = len(seen_w) ** depth
        if k > n:
            raise ArchitectureError(f"depth {depth} has {n} tuples of seen widths, fewer than the {k} drawn")
        return [tuple(seen_w[i // len(seen_w) ** (depth - 1 - p) % len(seen_w)] for p in range(depth))
                for i in rng.sample(range(n), k)]

    for depth in seen_d:
        drawn = draw(depth, combination_per_depth + validation_per_depth + train_per_depth)
        categories += [(h, "combination") for h in drawn[:combination_per_depth]]
        validation += drawn[combination_per_depth : combination_per_depth + validation_per_depth]
        train += sorted(drawn[combination_per_depth + validation_per_depth :])
        taken.update(drawn)
        for width in VARIED_HELD_OUT_WIDTHS:
            h = with_width(depth, width)
            categories.append((h, "width"))
            taken.add(h)
    for depth in VARIED_HELD_OUT_DEPTHS:
        for h in draw(depth, depth_archs):
            categories.append((h, "depth"))
            taken.add(h)
        for width in VARIED_HELD_OUT_WIDTHS:
            h = with_width(depth, width)
            categories.append((h, "width_and_depth"))
            taken.add(h)
    order = ("combination", "width", "depth", "width_and_depth")
    categories.sort(key=lambda hc: (order.index(hc[1]), len(hc[0])))  # stable: draw order within a category and depth
    return ArchitectureSplit(
        train=tuple(train),
        held_out=tuple(h for h, _ in categories),
        validation=tuple(validation),
        excluded=(),
        rule=(
            f"widths {{{','.join(map(str, VARIED_WIDTHS))}}} x depths {VARIED_DEPTHS[0]}-{VARIED_DEPTHS[-1]}, sampled with seed "
            f"{seed}; held out: widths {', '.join(map(str, VARIED_HELD_OUT_WIDTHS))} and depth "
            f"{', '.join(map(str, VARIED_HELD_OUT_DEPTHS))}; per seen depth {train_per_depth} train, "
            f"{validation_per_depth} validation, {combination_per_depth} held-out combinations, 2 held-out-width "
            f"architectures; {depth_archs} + 2 at the held-out depth"
        ),
        name="varied",
        widths=VARIED_WIDTHS,
        depths=VARIED_DEPTHS,
        held_out_widths=VARIED_HELD_OUT_WIDTHS,
        held_out_depths=VARIED_HELD_OUT_DEPTHS,
        categories=tuple(categories),
    )


def varied_all_depths_split(train_per_depth: int = 16, validation_per_depth: int = 1) -> ArchitectureSplit:
    """The ``varied`` split with its held-out depth trained on (module docstring): every architecture of
    :func:`varied_split` keeps its role, the held-out-depth test architectures become ``combination`` (seen widths)
    or ``width`` (a held-out width) tests, and ``train_per_depth`` train and ``validation_per_depth`` validation
    tuples of seen widths at each formerly held-out depth are drawn from the stream that continues the varied
    split's draws (so a dataset of ``varied`` holds every other architecture of this split)."""
    base = varied_split(train_per_depth=train_per_depth, validation_per_depth=validation_per_depth)
    rng = random.Random(f"{VARIED_SEED}:all-depths")
    seen_w = tuple(w for w in VARIED_WIDTHS if w not in VARIED_HELD_OUT_WIDTHS)
    taken = set(base.listed())
    train, validation = list(base.train), list(base.validation)
    for depth in VARIED_HELD_OUT_DEPTHS:
        drawn: list[Hidden] = []
        while len(drawn) < train_per_depth + validation_per_depth:
            h = tuple(rng.choice(seen_w) for _ in range(depth))
            if h not in taken:
                drawn.append(h)
                taken.add(h)
        validation += drawn[:validation_per_depth]
        train += sorted(drawn[validation_per_depth:])
    recategorized = {"depth": "combination", "width_and_depth": "width"}
    categories = tuple((h, recategorized.get(c, c)) for h, c in base.categories)
    return ArchitectureSplit(
        train=tuple(train),
        held_out=base.held_out,
        validation=tuple(validation),
        excluded=(),
        rule=(f"the varied split with depth {', '.join(map(str, VARIED_HELD_OUT_DEPTHS))} trained on: "
              f"{train_per_depth} train and {validation_per_depth} validation architectures of seen widths drawn "
              f"there; its test architectures held out as combinations / held-out widths; held out: widths "
              f"{', '.join(map(str, VARIED_HELD_OUT_WIDTHS))}"),
        name="varied-all-depths",
        widths=VARIED_WIDTHS,
        depths=VARIED_DEPTHS,
        held_out_widths=VARIED_HELD_OUT_WIDTHS,
        held_out_depths=(),
        categories=categories,
    )


def varied_dense_split(extra_per_depth: int = 48) -> ArchitectureSplit:
    """``varied-all-depths`` with up to ``extra_per_depth`` more train tuples of seen widths at every depth (module
    docstring): every architecture of that split keeps its role; the new ones are drawn, depth by depth, from
    ``random.Random(f"{VARIED_SEED}:dense")`` among the tuples no role holds yet (all of them where fewer are left)."""
    base = varied_all_depths_split()
    rng = random.Random(f"{VARIED_SEED}:dense")
    seen_w = tuple(w for w in VARIED_WIDTHS if w not in VARIED_HELD_OUT_WIDTHS)
    taken = set(base.listed())
    train = list(base.train)
    for depth in VARIED_DEPTHS:
        free = [h for h in search_space(seen_w, depth) if h not in taken] if len(seen_w) ** depth <= 10_000 else None
        if free is not None and len(free) <= extra_per_depth:
            drawn = free
        elif free is not None:
            drawn = rng.sample(free, extra_per_depth)
        else:
            drawn = []
            while len(drawn) < extra_per_depth:
                h = tuple(rng.choice(seen_w) for _ in range(depth))
                if h not in taken:
                    drawn.append(h)
                    taken.add(h)
        taken.update(drawn)
        train += sorted(drawn)
    return replace(
        base,
        train=tuple(train),
        rule=(f"the varied-all-depths split plus up to {extra_per_depth} more train architectures of seen widths per "
              f"depth {VARIED_DEPTHS[0]}-{VARIED_DEPTHS[-1]}; held out: widths "
              f"{', '.join(map(str, VARIED_HELD_OUT_WIDTHS))} and the same test architectures"),
        name="varied-dense",
    )


SPLITS = {"paper": paper_split, "varied": varied_split, "varied-all-depths": varied_all_depths_split,
          "varied-dense": varied_dense_split}
"""Every named split and the function that draws it (with its default arguments)."""
assert set(SPLITS) == set(get_args(SplitName))


@functools.lru_cache(maxsize=None)
def get_split(name: str = "paper") -> ArchitectureSplit:
    """The named split (``"paper"``: :func:`paper_split`; ``"varied"``: :func:`varied_split`;
    ``"varied-all-depths"``: :func:`varied_all_depths_split`; ``"varied-dense"``: :func:`varied_dense_split`)."""
    if name not in SPLITS:
        raise ArchitectureError(f"unknown architecture split {name!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS[name]()


# ---------------------------------------------------------------------- architecture tokens
class WidthVocab:
    """Discrete architecture tokens (paper Sec. 5.1.1): one id per hidden width plus boundary ids.

    An architecture is encoded as ``[<in>, w(h_1), ..., w(h_L), <out>]``: the input and output
    dims are fixed by the task, so they are marker tokens, exactly the paper's vocabulary
    ``{input, 16, 32, 64, output}``.
    """

    INPUT = 0
    OUTPUT = 1
    SPECIALS = ("<in>", "<out>")

    def __init__(self, widths: Iterable[int] = PAPER_WIDTHS) -> None:
        ws = sorted(set(int(w) for w in widths))
        if not ws or ws[0] <= 0:
            raise ArchitectureError(f"a width vocabulary needs positive widths, got {list(widths)}")
        self.widths: tuple[int, ...] = tuple(ws)
        self._id = {w: i + len(self.SPECIALS) for i, w in enumerate(self.widths)}

    def __len__(self) -> int:
        return len(self.SPECIALS) + len(self.widths)

    def __repr__(self) -> str:
        return f"WidthVocab({list(self.widths)})"

    def token_of(self, width: int) -> int:
        try:
            return self._id[int(width)]
        except KeyError:
            raise ArchitectureError(
                f"width {width} is not in the token vocabulary {list(self.widths)}; "
                "architecture tokens can only express these widths"
            ) from None

    def width_of(self, token: int) -> int:
        t = int(token)
        if not len(self.SPECIALS) <= t < len(self):
            raise ArchitectureError(f"token {t} is not a width token (valid: {len(self.SPECIALS)}..{len(self) - 1})")
        return self.widths[t - len(self.SPECIALS)]

    def encode(self, arch: Architecture) -> list[int]:
        """``[<in>, h_1, ..., h_L, <out>]`` as token ids."""
        return [self.INPUT, *(self.token_of(h) for h in arch.hidden), self.OUTPUT]

    def decode(self, tokens: Sequence[int], input_dim: int, output_dim: int, activation: str = "tanh") -> Architecture:
        """Inverse of :meth:`encode`; the boundary markers must be in place."""
        toks = [int(t) for t in tokens]
        if len(toks) < 3 or toks[0] != self.INPUT or toks[-1] != self.OUTPUT:
            raise ArchitectureError(f"token sequence {toks} must look like [<in>, widths..., <out>]")
        return Architecture(input_dim, tuple(self.width_of(t) for t in toks[1:-1]), output_dim, activation)

    def nearest_width_token(self, value: float) -> int:
        """The width token whose width is nearest to ``value`` (used to decode sampled embeddings)."""
        best = min(self.widths, key=lambda w: (abs(w - value), w))
        return self._id[best]
