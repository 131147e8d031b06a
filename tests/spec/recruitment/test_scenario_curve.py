"""The predicted curve with what-if sites (``simulated_curve``): without new sites it agrees with the closed-form
``expected_curve``; with a new site of a known rate the counts are Poisson with the rate accumulated by hand."""

from __future__ import annotations

import pytest
from scipy import stats

from trialwright.analysis.forecast import NewSite, SiteHistory, expected_curve, fit_poisson_gamma, simulated_curve


def test_without_new_sites_it_agrees_with_the_closed_form() -> None:
    sites = [SiteHistory("A", 10, 100.0), SiteHistory("B", 20, 100.0), SiteHistory("C", 3, 80.0)]
    fit = fit_poisson_gamma(sites)
    closed = expected_curve(fit, sites, 120.0, 20.0)
    simulated = simulated_curve(fit, sites, [p.day for p in closed], n_simulations=50_000, seed=1)
    for c, s in zip(closed, simulated, strict=True):
        assert s.day == c.day and s.mean == pytest.approx(c.mean, rel=1e-12)  # the mean is exact in both
        # quantiles of a discrete distribution: Monte-Carlo error and the matched gamma move them by at most one
        for limit in ("lo95", "lo80", "hi80", "hi95"):
            assert abs(getattr(s, limit) - getattr(c, limit)) <= 1, (c, s)


def test_a_new_site_of_known_rate_adds_its_share_after_it_opens() -> None:
    """Five sites with a pooled rate of 0.1/day each (0.5 in all), and a new site recruiting 1/day (shape 1e8: all
    but certain) from day 20: recruits by day t ~ Poisson(0.5 t + 1 (t - 20)+)."""
    sites = [SiteHistory(s, 50, 500.0) for s in "ABCDE"]
    fit = fit_poisson_gamma(sites)
    days = [0.0, 10.0, 20.0, 30.0, 60.0]
    curve = simulated_curve(fit, sites, days, new_sites=[NewSite("N", 20.0, 1.0, 1e8)], n_simulations=50_000, seed=2)
    for point, t in zip(curve, days, strict=True):
        mean = 0.5 * t + 1.0 * max(t - 20.0, 0.0)
        assert point.mean == pytest.approx(mean, rel=1e-9)
        exact = stats.poisson(mean)
        assert abs(point.lo95 - exact.ppf(0.025)) <= 1 and abs(point.hi95 - exact.ppf(0.975)) <= 1
        assert abs(point.lo80 - exact.ppf(0.10)) <= 1 and abs(point.hi80 - exact.ppf(0.90)) <= 1


def test_bad_input_names_the_field() -> None:
    sites = [SiteHistory("A", 4, 40.0)]
    fit = fit_poisson_gamma(sites)
    with pytest.raises(ValueError, match=r"days must be a finite number >= 0"):
        simulated_curve(fit, sites, [5.0, -1.0])
    with pytest.raises(ValueError, match=r"n_simulations must be an integer >= 100"):
        simulated_curve(fit, sites, [5.0], n_simulations=10)
    with pytest.raises(ValueError, match=r"must not both be empty"):
        simulated_curve(fit, [], [5.0])
