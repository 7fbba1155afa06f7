"""The tenant's loyalty program: how money converts to points, and what of an order earns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.audit import SYSTEM, AuditAction, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import AmountTooSmall, InvalidRequest
from chalicelib.domain.expiry import NO_EXPIRY, ExpiryKind, ExpiryPolicy

if TYPE_CHECKING:
    from chalicelib.domain.ports import ProgramStore

#: ISO 4217 currencies whose minor unit is not 2 digits.
_MINOR_UNITS = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


class Rounding(StrEnum):
    FLOOR = "floor"
    NEAREST = "nearest"
    CEIL = "ceil"


_ROUNDING_MODES = {Rounding.FLOOR: ROUND_FLOOR, Rounding.NEAREST: ROUND_HALF_UP, Rounding.CEIL: ROUND_CEILING}


@dataclass(frozen=True)
class TransferPolicy:
    """Whether members may move points to each other (chalicelib.domain.transfers), and within
    which limits: at least ``minimum`` points a transfer, at most ``daily_maximum`` sent by a
    member per local day (None: no daily limit)."""

    enabled: bool = False
    minimum: int = 1
    daily_maximum: int | None = None

    def __post_init__(self) -> None:
        if self.minimum < 1:
            raise InvalidRequest.for_fields(
                "transfers.minimum must be at least 1", ("transfers.minimum", "at least 1", "value_error")
            )
        if self.daily_maximum is not None and self.daily_maximum < self.minimum:
            raise InvalidRequest.for_fields(
                "transfers.daily_maximum may not be below transfers.minimum",
                ("transfers.daily_maximum", f"at least the minimum ({self.minimum})", "value_error"),
            )


NO_TRANSFERS = TransferPolicy()

#: The bounds of a household's size (chalicelib.domain.households): members, the owner included.
HOUSEHOLD_SIZE_RANGE = (2, 10)


@dataclass(frozen=True)
class HouseholdPolicy:
    """Whether members may form households that pool their points (chalicelib.domain.households),
    and how many members one may hold, its owner included."""

    enabled: bool = False
    max_members: int = 6

    def __post_init__(self) -> None:
        low, high = HOUSEHOLD_SIZE_RANGE
        if not low <= self.max_members <= high:
            raise InvalidRequest.for_fields(
                f"households.max_members must be from {low} to {high}",
                ("households.max_members", f"from {low} to {high}", "value_error"),
            )


NO_HOUSEHOLDS = HouseholdPolicy()


@dataclass(frozen=True)
class Program:
    points_per_currency_unit: Decimal = Decimal("1")
    rounding: Rounding = Rounding.FLOOR
    updated_at: datetime | None = None
    expiry: ExpiryPolicy = NO_EXPIRY
    #: Default return window of earned points, in days (0: available at once).
    pending_days: int = 0
    #: Whether a reversal may push the available balance below zero (else it stops at zero).
    reversal_clawback: bool = False
    #: ``points.expiring_soon`` is announced this many days before points expire (0: never).
    expiry_warning_days: int = 14
    #: Points credited on the member's birthday (0: none); ``member.birthday`` is announced either way.
    birthday_bonus: int = 0
    #: Whether an order's shipping earns points (else only the goods do).
    earn_on_shipping: bool = False
    #: Whether an order's tax earns points.
    earn_on_tax: bool = False
    #: Points credited once on enrolment (0: none), announced in ``member.welcome``.
    signup_bonus: int = 0
    #: Whether members enrolled by a bulk import get the sign-up bonus and ``member.welcome`` too.
    welcome_imported: bool = False
    #: The earning rules with a cap (their ids), as the store summarises them; None: not known
    #: (an earn then reads the rules to learn its caps). Not part of the program's value.
    capped_rules: frozenset[str] | None = field(default=None, compare=False)
    #: Whether a tier program was ever stored, as the store summarises it; None: not known.
    tiers_stored: bool | None = field(default=None, compare=False)
    #: Whether a challenge was ever stored, as the store summarises it (a movement reads the
    #: challenges only then). Not part of the program's value.
    challenges_stored: bool = field(default=False, compare=False)
    #: Whether members may transfer points to each other, and the limits (default: not allowed).
    transfers: TransferPolicy = NO_TRANSFERS
    #: Members with no earn or redeem for this many years are erased (chalicelib.domain.privacy); None: never.
    erase_inactive_after_years: int | None = None
    #: Metadata keys of movements the brand marks as personal: an erasure removes them.
    personal_metadata_keys: tuple[str, ...] = ()
    #: Whether descriptions of movements may hold personal data: an erasure removes them.
    personal_descriptions: bool = False
    #: Money per point, in the tenant's currency: what the insights' liability figures are worth
    #: (0: points carry no stated value; liability is then reported in points, valued at 0).
    point_value: Decimal = Decimal("0")
    #: Whether members may pool points in households, and their size (default: not allowed).
    households: HouseholdPolicy = NO_HOUSEHOLDS

    @property
    def may_cap(self) -> bool:
        """Whether an earn of plain points or an amount may be cut by a cap (read the rules)."""
        return self.capped_rules is None or bool(self.capped_rules)

    @property
    def may_have_tiers(self) -> bool:
        """Whether a movement must read the tier version in force (one may be stored)."""
        return self.tiers_stored is not False

    @property
    def may_have_challenges(self) -> bool:
        """Whether a movement must read the challenges (one was stored)."""
        return self.challenges_stored

    def points_for(self, amount: Decimal) -> int:
        """Points earned for ``amount`` of the tenant's currency."""
        return self.round(amount * self.points_per_currency_unit)

    def round(self, raw: Decimal) -> int:
        """Whole points from a decimal figure, with the program's rounding."""
        return int(raw.quantize(Decimal(1), rounding=_ROUNDING_MODES[self.rounding]))


DEFAULT_PROGRAM = Program()


def parse_amount(amount: str, currency: str) -> Decimal:
    """A positive decimal string with at most the currency's minor-unit digits."""
    try:
        value = Decimal(amount)
    except ArithmeticError:
        value = None
    places = minor_units(currency)
    if value is None or not value.is_finite() or value <= 0:
        raise InvalidRequest.for_fields(
            "amount must be a positive decimal string", ("amount", "not a positive decimal", "decimal_parsing")
        )
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidRequest.for_fields(
            f"amount has more than {places} decimal places for {currency}",
            ("amount", f"at most {places} decimal places", "decimal_max_places"),
        )
    return value


class ProgramService:
    def __init__(self, store: ProgramStore, clock: Clock = utc_now, *, auditor: Auditor | None = None) -> None:
        self._store = store
        self._clock = clock
        self._auditor = auditor or Auditor(SYSTEM, clock)

    def get(self) -> Program:
        return self._store.get() or DEFAULT_PROGRAM

    def forget(self) -> None:
        """The next ``get`` reads the store: a movement or a preview starts with it, so it
        decides on the program as it is, not as an earlier one in this container read it."""
        self._store.forget()

    def replace(
        self,
        points_per_currency_unit: Decimal,
        rounding: Rounding,
        expiry: ExpiryPolicy = NO_EXPIRY,
        pending_days: int = 0,
        reversal_clawback: bool = False,
        *,
        expiry_warning_days: int = DEFAULT_PROGRAM.expiry_warning_days,
        birthday_bonus: int = 0,
        earn_on_shipping: bool = False,
        earn_on_tax: bool = False,
        transfers: TransferPolicy = NO_TRANSFERS,
        erase_inactive_after_years: int | None = None,
        personal_metadata_keys: tuple[str, ...] = (),
        personal_descriptions: bool = False,
        point_value: Decimal = Decimal("0"),
        signup_bonus: int = 0,
        welcome_imported: bool = False,
        households: HouseholdPolicy = NO_HOUSEHOLDS,
    ) -> Program:
        if expiry.kind is ExpiryKind.INACTIVITY and expiry.days is not None and pending_days >= expiry.days:
            raise InvalidRequest.for_fields(
                "the inactivity period must be longer than the return window (pending_days), "
                "or pending points would lapse as soon as they mature",
                ("expiry.days", f"must be greater than pending_days ({pending_days})", "value_error"),
            )
        program = Program(
            points_per_currency_unit=points_per_currency_unit,
            rounding=rounding,
            updated_at=self._clock(),
            expiry=expiry,
            pending_days=pending_days,
            reversal_clawback=reversal_clawback,
            expiry_warning_days=expiry_warning_days,
            birthday_bonus=birthday_bonus,
            earn_on_shipping=earn_on_shipping,
            earn_on_tax=earn_on_tax,
            transfers=transfers,
            erase_inactive_after_years=erase_inactive_after_years,
            personal_metadata_keys=tuple(sorted(set(personal_metadata_keys))),
            personal_descriptions=personal_descriptions,
            point_value=point_value,
            signup_bonus=signup_bonus,
            welcome_imported=welcome_imported,
            households=households,
        )
        before = self._store.get()
        audit = self._auditor.entry(
            AuditAction.PROGRAM_UPDATED, "program", "program", before=before, after=program, at=program.updated_at
        )
        self._store.put(program, audit)
        return program

    def points_for_amount(self, amount: str, currency: str) -> tuple[Decimal, int]:
        value = parse_amount(amount, currency)
        points = self.get().points_for(value)
        if points <= 0:
            raise AmountTooSmall(
                f"an amount of {amount} {currency} earns no points under the current program",
                details={"amount": amount, "points": points},
            )
        return value, points
