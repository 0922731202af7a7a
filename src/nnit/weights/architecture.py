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
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Iterable, Sequence

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
@dataclass(frozen=True)
class ArchitectureSplit:
    """The paper's search space split into train / held-out / validation / excluded hidden widths."""

    train: tuple[tuple[int, ...], ...]
    held_out: tuple[tuple[int, ...], ...]
    validation: tuple[tuple[int, ...], ...]
    excluded: tuple[tuple[int, ...], ...]
    rule: str = field(default="", compare=False)

    def role(self, hidden: Sequence[int]) -> str:
        """'train', 'held_out', 'validation', 'excluded' or 'outside' (not in the search space)."""
        h = tuple(hidden)
        for name in ("train", "held_out", "validation", "excluded"):
            if h in getattr(self, name):
                return name
        return "outside"


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
    )


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
