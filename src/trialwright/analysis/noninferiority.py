"""Non-inferiority (ICH E9 3.3.2; CONSORT extension for non-inferiority and equivalence trials, Piaggio et al.
JAMA 2012): the comparison of a treatment with the reference group against the margin the protocol declares.

The report's interval is the two-sided 95% CI; its bound on the side of harm is the one-sided 97.5% bound, so the
conclusion is the one-sided test at alpha 0.025 (half the two-sided 0.05). "non-inferior" when that bound lies
within the margin (above -margin when higher is better, below +margin when lower is better), else "non-inferiority
not shown". The p-value is one-sided, for H0: the difference is the margin on the side of harm, from the same
model's estimate and standard error with the model's own reference distribution (ANCOVA: t on its residual degrees
of freedom). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import stats

__all__ = ["LOWER", "NON_INFERIOR", "NOT_SHOWN", "SAID", "UPPER", "NonInferiority", "by_t"]

def N_(message: str) -> str:
    """Marks a word the reader's catalog translates (as ``estimands.common.N_``, which imports this module's users)."""
    return message


# The words of the report (the catalog has each in Persian; ``analysis.report`` translates them).
NON_INFERIOR = N_("non-inferior")
NOT_SHOWN = N_("non-inferiority not shown")
UPPER, LOWER = N_("upper"), N_("lower")
SAID = N_("non-inferiority margin {limit}: {side} 95% bound {bound}, one-sided {p}: {conclusion}")


@dataclass(frozen=True, slots=True)
class NonInferiority:
    """One comparison judged against the non-inferiority margin: the margin, the direction of benefit, the CI's bound
    on the side of harm, the one-sided p for H0 (difference = the margin on the side of harm) and the conclusion."""

    margin: float
    lower_is_better: bool
    bound: float  # the 95% CI's bound on the side of harm (the upper when lower is better)
    p_value: float  # one-sided
    conclusion: str  # NON_INFERIOR or NOT_SHOWN

    @property
    def limit(self) -> float:
        """The margin as a difference on the side of harm: +margin when lower is better, -margin otherwise."""
        return self.margin if self.lower_is_better else -self.margin

    @property
    def side(self) -> str:
        """Which bound of the 95% CI is on the side of harm."""
        return UPPER if self.lower_is_better else LOWER

    @property
    def p_text(self) -> str:
        return "p<0.001" if self.p_value < 0.001 else f"p={self.p_value:.3f}"

    def text(self, gettext: Callable[[str], str] = str, digits: Callable[[str], str] = str) -> str:
        """The margin, the bound, the one-sided p and the conclusion in one line, in the reader's words and digits
        (English as written by default)."""
        return gettext(SAID).format(
            limit=digits(f"{self.limit:+g}"),
            side=gettext(self.side),
            bound=digits(f"{self.bound:.3g}"),
            p=digits(self.p_text),
            conclusion=gettext(self.conclusion),
        )


def by_t(
    estimate: float, se: float, df: float | None, lower: float, upper: float, margin: float, lower_is_better: bool
) -> NonInferiority:
    """Non-inferiority of a difference estimated with standard error ``se`` and a t reference distribution on ``df``
    degrees of freedom (None: the normal), judged by the two-sided 95% CI (``lower``, ``upper``) of the same model."""
    if not (margin > 0 and math.isfinite(margin)):
        raise ValueError(f"a non-inferiority margin must be positive, not {margin}")
    if not se > 0:
        raise ValueError("no standard error, so no non-inferiority test")
    dist = stats.norm if df is None else stats.t(df)
    if lower_is_better:  # harm is a positive difference: H0 difference >= margin, rejected for small values
        bound, z = upper, (estimate - margin) / se
        p = float(dist.cdf(z))
        shown = upper < margin
    else:  # harm is a negative difference: H0 difference <= -margin, rejected for large values
        bound, z = lower, (estimate + margin) / se
        p = float(dist.sf(z))
        shown = lower > -margin
    return NonInferiority(margin, lower_is_better, bound, p, NON_INFERIOR if shown else NOT_SHOWN)
