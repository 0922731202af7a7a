"""Weight representation: architectures, batched MLPs, patch tokens, normalization."""

from nnit.weights.architecture import (
    Architecture,
    ArchitectureError,
    ArchitectureSplit,
    SplitName,
    WidthVocab,
    get_split,
    paper_split,
    search_space,
    varied_split,
)
from nnit.weights.mlp import WeightError, WeightSet
from nnit.weights.normalize import WeightNormalizer
from nnit.weights.tokenize import GridError, PatchGrid, PatchTokens, TokenBatch, collate_tokens

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ArchitectureSplit",
    "GridError",
    "PatchGrid",
    "PatchTokens",
    "TokenBatch",
    "WeightError",
    "WeightNormalizer",
    "WeightSet",
    "SplitName",
    "WidthVocab",
    "collate_tokens",
    "get_split",
    "paper_split",
    "search_space",
    "varied_split",
]
