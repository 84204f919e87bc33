"""Verify by likelihood: judge an expected value from the model's log-probabilities.

At each token of the expected value the margin is log p(expected token) minus the log
probability of the best other token. The value is ``verified`` when every margin clears
``margin``, ``differs`` when the model clearly prefers something else at some position, and
``unreadable`` in between (the model is not sure either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch

DEFAULT_MARGIN = 2.0  # nats: the expected token at least e² ≈ 7× likelier than any other


class VerifyStatus(StrEnum):
    """The outcome of verifying one field."""

    VERIFIED = "verified"
    DIFFERS = "differs"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class FieldScore:
    """How an expected value scored."""

    status: VerifyStatus
    mean_logprob: float
    min_margin: float
    worst_position: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"status": self.status.value, "mean_logprob": round(self.mean_logprob, 4),
                "min_margin": round(self.min_margin, 4), "worst_position": self.worst_position}


def token_margins(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """(log p of each target, its margin over the best other token) for ``logits`` [T, V]
    predicting ``targets`` [T]."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    target = logprobs.gather(-1, targets[:, None]).squeeze(-1)
    others = logprobs.scatter(-1, targets[:, None], float("-inf"))
    return target, target - others.max(dim=-1).values


def judge(logits: torch.Tensor, targets: torch.Tensor, *,
          margin: float = DEFAULT_MARGIN) -> FieldScore:
    """Verdict on one expected value from its tokens' logits."""
    if targets.numel() == 0:
        return FieldScore(VerifyStatus.UNREADABLE, float("-inf"), float("-inf"), -1)
    target, margins = token_margins(logits, targets)
    worst = int(torch.argmin(margins))
    low = float(margins[worst])
    status = (VerifyStatus.VERIFIED if low >= margin
              else VerifyStatus.DIFFERS if low <= -margin else VerifyStatus.UNREADABLE)
    return FieldScore(status, float(target.mean()), low, worst)
