"""Recruitment forecasting (Poisson-gamma model, Anisimov & Fedorov 2007): a worked example by hand, the fit
against an independent likelihood, the F closed form against Monte Carlo, the coverage of the intervals on
data simulated from the model itself, bad input, and ordering invariants."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special, stats

from trialwright.analysis.forecast import (
    ALPHA_CAP,
    CompletionForecast,
    NewSite,
    PoissonGammaFit,
    SiteHistory,
    expected_curve,
    fit_poisson_gamma,
    forecast_completion,
)

# ---------------------------------------------------------------------------------------------------------------
# 1. A worked example by hand
# ---------------------------------------------------------------------------------------------------------------

# alpha = 1, beta = 10 (given). Three sites:
#   site | k | tau | posterior Gamma(1 + k, 10 + tau) | mean = shape/rate | variance = shape/rate^2
#   A    | 1 |  10 | Gamma(2, 20)                     | 0.10              | 2/400  = 0.0050
#   B    | 3 |  30 | Gamma(4, 40)                     | 0.10              | 4/1600 = 0.0025
#   C    | 0 |  10 | Gamma(1, 20)                     | 0.05              | 1/400  = 0.0025
# Total rate: mean m = 0.25, variance v = 0.01, so the matched gamma has a = m^2/v = 0.0625/0.01 = 6.25 and
# b = m/v = 0.25/0.01 = 25.
HAND_SITES = [SiteHistory("A", 1, 10.0), SiteHistory("B", 3, 30.0), SiteHistory("C", 0, 10.0)]
HAND_FIT = fit_poisson_gamma(HAND_SITES, prior=(1.0, 10.0))


def test_worked_example_posteriors_and_matched_gamma() -> None:
    """Each site's posterior is Gamma(alpha + k, beta + tau); the total rate is matched as Gamma(6.25, 25)."""
    posts = {p.site: (p.shape, p.rate, p.mean_rate) for p in HAND_FIT.site_posteriors}
    assert posts == {"A": (2.0, 20.0, 0.1), "B": (4.0, 40.0, 0.1), "C": (1.0, 20.0, 0.05)}
    fc = forecast_completion(HAND_FIT, HAND_SITES, 1)
    assert fc.method == "closed-form"
    assert fc.total_rate_shape == pytest.approx(6.25, abs=1e-12)
    assert fc.total_rate_rate == pytest.approx(25.0, abs=1e-12)


def test_worked_example_one_more_recruit_is_lomax() -> None:
    """For n = 1, T a/b ~ F(2, 2a), whose CDF is 1 - (1 + x/a)^-a: T is Lomax, T_q = b((1 - q)^(-1/a) - 1)."""
    # 1/a = 1/6.25 = 0.16, b = 25
    # median: 25 * (2^0.16 - 1)        = 25 * (1.11728713807222 - 1)  = 2.9321784518055
    # 10%:    25 * (0.9^-0.16 - 1)     = 25 * (1.017000575051452 - 1) = 0.4250143762863
    # 90%:    25 * (10^0.16 - 1)       = 25 * (1.4454397707459274 - 1) = 11.135994268648
    # 2.5%:   25 * (0.975^-0.16 - 1)   = 25 * (1.0040590650573036 - 1) = 0.1014766264326
    # 97.5%:  25 * (40^0.16 - 1)       = 25 * (1.8043866224194838 - 1) = 20.109665560487
    fc = forecast_completion(HAND_FIT, HAND_SITES, 1)
    assert fc.median_days == pytest.approx(2.9321784518055, abs=1e-9)
    assert fc.interval(0.8).lower == pytest.approx(0.4250143762863, abs=1e-9)
    assert fc.interval(0.8).upper == pytest.approx(11.135994268648, abs=1e-9)
    assert fc.interval(0.95).lower == pytest.approx(0.1014766264326, abs=1e-9)
    assert fc.interval(0.95).upper == pytest.approx(20.109665560487, abs=1e-9)
    # P(T <= 10) = 1 - (1 + 10/25)^-6.25 = 1 - 1.4^-6.25
    assert fc.probability_by(10.0) == pytest.approx(1 - 1.4**-6.25, abs=1e-12)
    assert fc.mean_days == pytest.approx(25 / 5.25, abs=1e-12)  # E[T] = n b / (a - 1)


def _quantile_by_bisection(n: int, a: float, b: float, q: float) -> float:
    """T = b G_n / G_a, so P(T <= t) = I_{t/(t+b)}(n, a): a regularised incomplete beta, not the F ppf."""
    lo, hi = 0.0, 1.0
    while special.betainc(n, a, hi / (hi + b)) < q:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if special.betainc(n, a, mid / (mid + b)) < q else (lo, mid)
    return (lo + hi) / 2


def test_worked_example_ten_more_recruits() -> None:
    """For n = 10, T = (n b / a) X = 40 X with X ~ F(20, 12.5); the reference values below were made by
    bisection on the incomplete beta (the script is _quantile_by_bisection, rerun here)."""
    reference = {0.5: 40.828931294270774, 0.1: 21.24113428264485, 0.9: 81.28692224588289,
                 0.025: 15.061929292931548, 0.975: 120.28796114267743}  # fmt: skip
    for q, value in reference.items():
        assert _quantile_by_bisection(10, 6.25, 25.0, q) == pytest.approx(value, abs=1e-9)
    fc = forecast_completion(HAND_FIT, HAND_SITES, 10)
    assert fc.median_days == pytest.approx(reference[0.5], abs=1e-9)
    assert (fc.interval(0.8).lower, fc.interval(0.8).upper) == pytest.approx((reference[0.1], reference[0.9]), abs=1e-9)
    assert (fc.interval(0.95).lower, fc.interval(0.95).upper) == pytest.approx(
        (reference[0.025], reference[0.975]), abs=1e-9
    )


def test_arrival_time_and_count_agree() -> None:
    """Having 10 more recruits by day t is N(t) >= 10 with N(t) ~ NB(a, b/(b+t)): the forecast and the
    expected curve are the same model seen from two sides."""
    fc = forecast_completion(HAND_FIT, HAND_SITES, 10)
    for t in (5.0, 30.0, 40.828931294270774, 90.0):
        assert fc.probability_by(t) == pytest.approx(stats.nbinom.sf(9, 6.25, 25 / (25 + t)), abs=1e-12)
    curve = expected_curve(HAND_FIT, HAND_SITES, 100.0, 30.0)
    assert [p.day for p in curve] == [0.0, 30.0, 60.0, 90.0, 100.0]
    assert [p.mean for p in curve] == pytest.approx([0.0, 7.5, 15.0, 22.5, 25.0], abs=1e-12)  # a t / b = t / 4
    for p in curve[1:]:
        nb = stats.nbinom(6.25, 25 / (25 + p.day))
        for value, q in ((p.lo95, 0.025), (p.lo80, 0.10), (p.hi80, 0.90), (p.hi95, 0.975)):
            assert nb.cdf(value) >= q and (value == 0 or nb.cdf(value - 1) < q)  # smallest count with CDF >= q
        assert p.lo95 <= p.lo80 <= p.mean <= p.hi80 <= p.hi95


# ---------------------------------------------------------------------------------------------------------------
# 2. The fit against an independent computation
# ---------------------------------------------------------------------------------------------------------------


def _independent_loglik(alpha: float, beta: float, k: np.ndarray, tau: np.ndarray) -> float:
    """scipy's negative binomial: n = alpha, p = beta / (beta + tau)."""
    return float(np.sum(stats.nbinom.logpmf(k, alpha, beta / (beta + tau))))


def _simulated_sites(seed: int, n_sites: int, alpha: float, beta: float) -> list[SiteHistory]:
    rng = np.random.default_rng(seed)
    rates = rng.gamma(alpha, 1 / beta, n_sites)
    tau = rng.uniform(100, 300, n_sites)
    k = rng.poisson(rates * tau)
    return [SiteHistory(f"S{i:03d}", int(k[i]), float(tau[i])) for i in range(n_sites)]


def test_mle_matches_an_independent_maximisation() -> None:
    """The fitted (alpha, beta) maximise the negative-binomial likelihood as scipy.stats.nbinom computes it,
    found here with a different optimiser (Nelder-Mead) over a different parameterisation (log alpha, log mean)."""
    sites = _simulated_sites(11, 40, 2.0, 40.0)
    k = np.array([s.recruited for s in sites])
    tau = np.array([s.days_open for s in sites])
    fit = fit_poisson_gamma(sites)
    assert fit.method == "mle" and fit.converged and fit.log_likelihood is not None
    assert fit.log_likelihood == pytest.approx(_independent_loglik(fit.alpha, fit.beta, k, tau), abs=1e-9)

    def neg(theta: np.ndarray) -> float:
        alpha, mean = math.exp(theta[0]), math.exp(theta[1])
        return -_independent_loglik(alpha, alpha / mean, k, tau)

    other = optimize.minimize(neg, [0.0, math.log(0.1)], method="Nelder-Mead",
                              options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 10_000})  # fmt: skip
    assert other.success
    assert -other.fun <= fit.log_likelihood + 1e-8  # nobody finds a higher likelihood
    assert fit.alpha == pytest.approx(math.exp(other.x[0]), rel=1e-4)
    assert fit.mean_rate == pytest.approx(math.exp(other.x[1]), rel=1e-4)


def test_mle_recovers_known_parameters_from_200_sites() -> None:
    """200 sites from Gamma(3, 60) (mean 0.05/day, CV 0.58), open 100-300 days: over 300 such simulations
    alpha-hat had SD 0.39 (13%) and the mean-rate estimate SD 4.7%, so 40% and 15% are about 3 SDs."""
    fit = fit_poisson_gamma(_simulated_sites(2024, 200, 3.0, 60.0))
    assert fit.method == "mle" and fit.converged
    assert fit.alpha == pytest.approx(3.0, rel=0.40)
    assert fit.mean_rate == pytest.approx(0.05, rel=0.15)
    assert fit.n_sites == 200 and len(fit.site_posteriors) == 200


def test_no_spread_between_sites_falls_back_to_a_pooled_rate() -> None:
    """With one site, or sites no more different than Poisson noise, the MLE of alpha is infinite: the fit
    says "pooled-poisson", caps alpha and keeps the common rate (all recruits / all site-days)."""
    one = fit_poisson_gamma([SiteHistory("A", 12, 120.0)])
    same = fit_poisson_gamma([SiteHistory(s, 10, 100.0) for s in "ABCDE"])
    for fit, rate in ((one, 0.1), (same, 0.1)):
        assert fit.method == "pooled-poisson"
        assert fit.alpha == ALPHA_CAP
        assert fit.mean_rate == pytest.approx(rate, rel=1e-12)
        assert "infinite" in fit.note
    fc = forecast_completion(same, [SiteHistory(s, 10, 100.0) for s in "ABCDE"], 20)
    assert any("pools all sites" in w for w in fc.warnings)
    # with the rate known, T is the 20th arrival of a Poisson process with rate 0.5/day: Gamma(20, 0.5)
    assert fc.median_days == pytest.approx(stats.gamma.ppf(0.5, 20, scale=2.0), rel=1e-4)


def test_a_prior_is_used_before_there_is_data() -> None:
    """Before any recruit, prior=(alpha, beta) gives the model; without it the fit refuses."""
    opened = [SiteHistory("A", 0, 0.0), SiteHistory("B", 0, 0.0)]
    fit = fit_poisson_gamma(opened, prior=(2.0, 40.0))
    assert (fit.method, fit.alpha, fit.beta, fit.log_likelihood) == ("prior", 2.0, 40.0, None)
    fc = forecast_completion(fit, opened, 10)
    assert fc.total_rate_shape == pytest.approx(4.0) and fc.total_rate_rate == pytest.approx(40.0)
    assert any("under-cover" in w for w in fc.warnings)
    with pytest.raises(ValueError, match=r"at least one recruit.*prior"):
        fit_poisson_gamma(opened)


# ---------------------------------------------------------------------------------------------------------------
# 3. Closed form against Monte Carlo
# ---------------------------------------------------------------------------------------------------------------


def _ecdf_close(forecast_mc: CompletionForecast, points: dict[float, float], n_draws: int) -> None:
    for q, t in points.items():
        se = math.sqrt(q * (1 - q) / n_draws)
        assert forecast_mc.probability_by(t) == pytest.approx(q, abs=4 * se), (q, t)


def test_f_closed_form_agrees_with_monte_carlo() -> None:
    """Sites open equally long share a posterior rate, so their total rate is exactly gamma and the only
    difference left is Monte-Carlo error: at each closed-form quantile T_q the simulated CDF is q within 4 SE."""
    sites = [SiteHistory(s, k, 150.0) for s, k in zip("ABCDEF", (3, 9, 14, 0, 6, 21), strict=True)]
    fit = fit_poisson_gamma(sites)
    assert fit.method == "mle"
    for n in (1, 25, 300):
        cf = forecast_completion(fit, sites, n)
        mc = forecast_completion(fit, sites, n, method="monte-carlo", n_simulations=200_000, seed=5)
        assert mc.method == "monte-carlo" and mc.n_simulations == 200_000
        points = {0.5: cf.median_days}
        for level in (0.8, 0.95):
            iv = cf.interval(level)
            points[(1 - level) / 2], points[(1 + level) / 2] = iv.lower, iv.upper
        _ecdf_close(mc, points, 200_000)


def test_gamma_matching_is_close_for_unlike_sites() -> None:
    """With very different posteriors the matched gamma is an approximation (Mountain & Sherlock 2022): on this
    deliberately uneven example (posterior means 0.038 to 0.18/day, one site with no data) the CDF at the
    closed-form quantiles is off by up to 0.021 at the median, a limit reached as n grows (T ~ n / total rate);
    the bound 0.03 leaves room for MC error (SE under 0.0012), not for a growing error."""
    sites = [SiteHistory("A", 2, 30.0), SiteHistory("B", 40, 200.0), SiteHistory("C", 0, 0.0),
             SiteHistory("D", 15, 400.0)]  # fmt: skip
    fit = fit_poisson_gamma(sites, prior=(1.5, 30.0))
    for n in (5, 50, 5000):
        cf = forecast_completion(fit, sites, n)
        mc = forecast_completion(fit, sites, n, method="monte-carlo", n_simulations=200_000, seed=9)
        for q, t in ((0.025, cf.interval(0.95).lower), (0.5, cf.median_days), (0.975, cf.interval(0.95).upper)):
            assert mc.probability_by(t) == pytest.approx(q, abs=0.03)


def test_new_site_opening_later_shifts_the_process() -> None:
    """Open sites with a known common rate r0 = 0.5/day, and a new site with a near-certain rate r1 = 1/day
    from day 20: recruits by day t > 20 are Poisson(r0 t + r1 (t - 20)), and P(T <= t) = P(N(t) >= n)."""
    sites = [SiteHistory(s, 50, 500.0) for s in "ABCDE"]  # pooled fit: 0.1/day each, alpha capped
    fit = fit_poisson_gamma(sites)
    new = NewSite("Z", opens_in_days=20.0, rate_per_day=1.0, shape=1e8)
    fc = forecast_completion(fit, sites, 40, new_sites=[new], n_simulations=200_000, seed=3)
    assert fc.method == "monte-carlo" and fc.new_sites == ("Z",)
    for t in (10.0, 25.0, 35.0, 50.0):
        exact = stats.poisson.sf(39, 0.5 * t + 1.0 * max(t - 20.0, 0.0))
        se = math.sqrt(exact * (1 - exact) / 200_000)
        assert fc.probability_by(t) == pytest.approx(exact, abs=4 * se + 1e-4)
    plain = forecast_completion(fit, sites, 40)
    assert fc.median_days < plain.median_days
    # a site opening long after completion changes nothing
    late = forecast_completion(fit, sites, 40, new_sites=[NewSite("Z", 1e6, 1.0, 2.0)], n_simulations=200_000)
    assert late.probability_by(plain.median_days) == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 200_000))


def test_only_new_sites() -> None:
    """With no open site, a single new site opening at day d with a fixed rate r gives T = d + Gamma(n, r)."""
    fit = fit_poisson_gamma([], prior=(2.0, 40.0))
    fc = forecast_completion(fit, [], 5, new_sites=[NewSite("N", 30.0, 0.25, 1e8)], n_simulations=100_000)
    assert fc.total_rate_shape is None and fc.n_sites == 0
    assert fc.median_days == pytest.approx(30.0 + stats.gamma.ppf(0.5, 5, scale=4.0), rel=0.01)
    assert fc.probability_by(29.9) == 0.0


# ---------------------------------------------------------------------------------------------------------------
# 4. Coverage on data simulated from the model
# ---------------------------------------------------------------------------------------------------------------

REPLICATES = 1000


def test_intervals_cover_at_their_nominal_rate() -> None:
    """Regime: 60 sites with rates from Gamma(2, 40) (mean 0.05/day, CV 0.71), each open 200-400 days (about 900
    recruits seen), forecasting the next 100 (fewer than seen, so plug-in error in alpha, beta is small).
    Each replicate draws site rates, the histories, and the true time of the next 100 recruits at the same
    rates; then fits and forecasts. With 1000 replicates the binomial SE is 0.0126 at 80% and 0.0069 at 95%:
    the bounds 0.80 +/- 0.04 and 0.95 +/- 0.025 are about 3.2 and 3.6 SEs, room for sampling noise plus the
    small plug-in shortfall (0 to 0.01 at 95% in this regime), not for a real miscalibration. Fixed seed."""
    rng = np.random.default_rng(20240607)
    n_sites, n_next = 60, 100
    rates = rng.gamma(2.0, 1 / 40.0, (REPLICATES, n_sites))
    tau = rng.uniform(200.0, 400.0, (REPLICATES, n_sites))
    k = rng.poisson(rates * tau)
    true_time = rng.gamma(n_next, 1.0, REPLICATES) / rates.sum(axis=1)  # n-th arrival at the total rate
    hit80 = hit95 = 0
    for r in range(REPLICATES):
        sites = [SiteHistory(f"S{i}", int(k[r, i]), float(tau[r, i])) for i in range(n_sites)]
        fc = forecast_completion(fit_poisson_gamma(sites), sites, n_next)
        i80, i95 = fc.interval(0.8), fc.interval(0.95)
        hit80 += i80.lower <= true_time[r] <= i80.upper
        hit95 += i95.lower <= true_time[r] <= i95.upper
        assert not fc.warnings
    coverage80, coverage95 = hit80 / REPLICATES, hit95 / REPLICATES
    assert abs(coverage80 - 0.80) <= 0.04, coverage80
    assert abs(coverage95 - 0.95) <= 0.025, coverage95


# ---------------------------------------------------------------------------------------------------------------
# 5. Bad input
# ---------------------------------------------------------------------------------------------------------------


NEW = NewSite("N", 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SiteHistory("A", 3, -1.0), r"SiteHistory\.days_open must be a finite number >= 0 \(got -1\.0\)"),
        (lambda: SiteHistory("A", -2, 10.0), r"SiteHistory\.recruited must be an integer >= 0 \(got -2\)"),
        (lambda: SiteHistory("A", 2, 0.0), r"SiteHistory\.recruited must be 0 when days_open is 0"),
        (lambda: SiteHistory("A", 2, math.nan), r"SiteHistory\.days_open must be a finite number"),
        (lambda: NewSite("N", -5.0, 0.1, 2.0), r"NewSite\.opens_in_days must be a finite number >= 0"),
        (lambda: NewSite("N", 5.0, 0.0, 2.0), r"NewSite\.rate_per_day must be a finite number > 0"),
        (lambda: NewSite("N", 5.0, 0.1, -1.0), r"NewSite\.shape must be a finite number > 0"),
        (lambda: forecast_completion(HAND_FIT, HAND_SITES, 0), r"remaining must be a positive integer \(got 0\)"),
        (lambda: forecast_completion(HAND_FIT, HAND_SITES, -4), r"remaining must be a positive integer \(got -4\)"),
        (lambda: forecast_completion(HAND_FIT, HAND_SITES, 5, levels=(0.8, 1.0)), r"levels must each lie"),
        (
            lambda: forecast_completion(HAND_FIT, HAND_SITES, 5, new_sites=[NEW], method="closed-form"),
            r"'closed-form' cannot include new_sites",
        ),
        (lambda: forecast_completion(HAND_FIT, [], 5), r"histories and new_sites must not both be empty"),
        (lambda: fit_poisson_gamma([SiteHistory("A", 1, 1.0), SiteHistory("A", 2, 2.0)]), r"each site once"),
        (lambda: fit_poisson_gamma([], prior=(0.0, 1.0)), r"prior alpha must be a finite number > 0"),
        (lambda: expected_curve(HAND_FIT, HAND_SITES, -1.0, 7.0), r"horizon_days must be a finite number > 0"),
        (lambda: expected_curve(HAND_FIT, HAND_SITES, 10.0, 0.0), r"step must be a finite number > 0"),
    ],
)
def test_bad_input_names_the_field_and_the_rule(build: Callable[[], object], message: str) -> None:
    """Each bad value raises ValueError saying which field is wrong and what it must be."""
    with pytest.raises(ValueError, match=message):
        build()


# ---------------------------------------------------------------------------------------------------------------
# Results: warnings, text and JSON
# ---------------------------------------------------------------------------------------------------------------


def test_warning_when_far_more_remain_than_were_seen() -> None:
    """4 recruits seen: asking for 100 more warns that the plug-in intervals under-cover; 3 more does not."""
    assert any("under-cover" in w for w in forecast_completion(HAND_FIT, HAND_SITES, 100).warnings)
    assert forecast_completion(HAND_FIT, HAND_SITES, 3).warnings == ()


def test_results_render_as_text_and_json() -> None:
    """summary() is readable text; as_dict() survives json.dumps, numpy numbers in or not."""
    from_numpy = SiteHistory("A", np.int64(3), np.float64(10.0))  # type: ignore[arg-type]
    assert type(from_numpy.recruited) is int and type(from_numpy.days_open) is float
    fc = forecast_completion(HAND_FIT, HAND_SITES, 100, new_sites=[NewSite("N", 10.0, 0.2, 4.0)])
    for result in (HAND_FIT, fc):
        json.dumps(result.as_dict(), allow_nan=False)
    assert "Time to 100 more recruits (Monte Carlo, 20000 draws, seed 0)" in fc.summary()
    assert "WARNING" in fc.summary()
    assert "site rates ~ Gamma(alpha=1, beta=10)" in HAND_FIT.summary()
    assert isinstance(HAND_FIT, PoissonGammaFit)
    with pytest.raises(AttributeError):
        HAND_FIT.alpha = 2.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------------------
# 6. Invariants
# ---------------------------------------------------------------------------------------------------------------

site_strategy = st.tuples(st.integers(0, 60), st.floats(0.0, 500.0)).map(lambda kt: (kt[0] if kt[1] > 0 else 0, kt[1]))


@settings(max_examples=60, deadline=None)
@given(
    alpha=st.floats(0.2, 20.0),
    beta=st.floats(1.0, 200.0),
    sites=st.lists(site_strategy, min_size=1, max_size=8),
    remaining=st.integers(1, 500),
    days=st.lists(st.floats(0.0, 5000.0), min_size=2, max_size=10),
)
def test_intervals_are_ordered_and_probability_is_monotone(
    alpha: float, beta: float, sites: list[tuple[int, float]], remaining: int, days: list[float]
) -> None:
    """lo95 <= lo80 <= median <= hi80 <= hi95, and P(T <= days) never falls as days grow."""
    histories = [SiteHistory(f"S{i}", k, tau) for i, (k, tau) in enumerate(sites)]
    fit = fit_poisson_gamma(histories, prior=(alpha, beta))
    fc = forecast_completion(fit, histories, remaining)
    i80, i95 = fc.interval(0.8), fc.interval(0.95)
    assert 0 < i95.lower <= i80.lower <= fc.median_days <= i80.upper <= i95.upper
    probabilities = [fc.probability_by(d) for d in sorted(days)]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert all(p <= q for p, q in itertools.pairwise(probabilities))
