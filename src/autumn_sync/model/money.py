"""Currencies and money: amounts are `Decimal` in major units everywhere in the core."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, getcontext

# ISO 4217 codes. The exponent is the number of minor-unit digits Stripe uses for the currency.
_ZERO_DECIMAL = frozenset(
    """
    bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf
    """.split()  # noqa: SIM905
)
_THREE_DECIMAL = frozenset(
    """
    bhd jod kwd omr tnd
    """.split()  # noqa: SIM905
)
_TWO_DECIMAL = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bmd bnd bob brl bsd btn bwp byn bzd
    cad cdf chf cny cop crc cup cve czk dkk dop dzd egp ern etb eur fjd fkp gbp gel ghs gip gmd
    gtq gyd hkd hnl htg huf idr ils inr iqd irr isk jmd kes kgs khr kpw kyd kzt lak lbp lkr lrd
    lsl lyd mad mdl mkd mmk mnt mop mru mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab pen
    pgk php pkr pln qar ron rsd rub sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp
    szl thb tjs tmt top try ttd twd tzs uah usd uyu uzs ves wst xcd yer zar zmw zwl
    """.split()  # noqa: SIM905
)

CURRENCIES: frozenset[str] = _ZERO_DECIMAL | _THREE_DECIMAL | _TWO_DECIMAL


def is_currency(code: str) -> bool:
    """True when `code` (lower case) is an ISO 4217 currency the tool knows."""
    return code in CURRENCIES


def exponent(currency: str) -> int:
    """Minor-unit digits of `currency`: 0 for JPY, 3 for KWD, 2 for most."""
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _THREE_DECIMAL:
        return 3
    return 2


def decimals(amount: Decimal) -> int:
    """Number of significant digits after the decimal point (20.50 has 1, 20 has 0)."""
    exp = canonical(amount).as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


# Wide enough for every number the file and the database hold (30 digits); a number that
# does not fit raises instead of rounding (`Inexact`), and takes the exact path.
_WIDE = Context(prec=64, traps=[Inexact, InvalidOperation])
_ONE = Decimal(1)


def canonical(amount: Decimal) -> Decimal:
    """`amount` without trailing zeros and never in exponent form: 20.500 → 20.5, 1E+2 → 100.
    Exact at any length: the default context would round to 28 digits (a file's number may
    have 30, and 999999999999999999.999999999999 must not become 1E+18)."""
    try:
        if amount == amount.to_integral_value():
            return amount.quantize(_ONE, context=_WIDE)
        return amount.normalize(_WIDE)
    except (Inexact, InvalidOperation):
        return _canonical_exact(amount)


def _canonical_exact(amount: Decimal) -> Decimal:
    _, digits, exp = amount.as_tuple()
    size = len(digits) + max(exp, 0) if isinstance(exp, int) else 0
    exact = Context(prec=max(size, getcontext().prec))
    if amount == amount.to_integral_value():
        return amount.quantize(_ONE, context=exact)
    return amount.normalize(exact)


def from_minor_units(amount: Decimal, currency: str) -> Decimal:
    """Amount in the currency's major units, to the minor unit (1500 usd → 15.00)."""
    places = exponent(currency)
    return amount.scaleb(-places).quantize(Decimal(1).scaleb(-places))


def to_minor_units(amount: Decimal, currency: str) -> Decimal:
    """Amount in the currency's minor units (20 usd → 2000, 20 jpy → 20, 1.5 kwd → 1500)."""
    return canonical(amount.scaleb(exponent(currency)))
