"""What every ``loyalty`` command shares: the connection options, the client they build, how
answers are printed, and errors as one line.

An error the command line can explain (the API's error, an API that does not answer, an
unknown profile, a bad program file, a wrong argument) is printed on stderr as one line,
``error: ...``, with a non-zero exit code: 1 for the API's refusals and the rest, 2 for a
wrong use of the command (click's usage errors).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer._click import exceptions as click_errors  # typer 0.29 vendors click: its exceptions are its own
from typer.core import TyperGroup

from devtools.bulk_client import ApiError, ApiUnreachable, Client, RequestsTransport
from devtools.profiles import API_ENV, KEY_ENV, PROFILE_ENV, ProfileError, Target, resolve

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_REFUSED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the command explains in one line (no traceback)."""


#: The failures printed as one line by :class:`OneLineErrors`; others are bugs (tracebacks).
EXPLAINED: tuple[type[Exception], ...] = (CliError, ApiError, ApiUnreachable, ProfileError)


def one_line(error: BaseException) -> str:
    text = str(error)
    fields = error.details.get("fields") if isinstance(error, ApiError) else None
    if isinstance(fields, list) and fields:  # which fields the API refused, and why
        problems = [f"{f.get('path') or 'body'}: {f.get('message')}" for f in fields[:3] if isinstance(f, dict)]
        text += " (" + "; ".join(problems) + (f"; {len(fields) - 3} more" if len(fields) > 3 else "") + ")"
    text = " ".join(text.split())
    return f"error: {text}" if text else f"error: {type(error).__name__}"


class OneLineErrors(TyperGroup):
    """The root group: errors the command line can explain are printed as one line on stderr."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        code: int | None = 0
        try:
            result = super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except click_errors.NoArgsIsHelpError as error:
            errors.print(error.format_message(), markup=False)
            code = EXIT_USAGE
        except click_errors.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
            errors.print(one_line(Exception(error.format_message())) + hint, markup=False)
            code = EXIT_USAGE
        except click_errors.ClickException as error:
            errors.print(one_line(Exception(error.format_message())), markup=False)
            code = error.exit_code
        except typer.Abort:
            errors.print("error: aborted", markup=False)
            code = 130
        except EXPLAINED as error:
            errors.print(one_line(error), markup=False)
            code = EXIT_REFUSED
        if standalone_mode:
            sys.exit(code)
        return code


# --- connection -------------------------------------------------------------------------------------

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api", envvar=API_ENV, metavar="URL", help="The API's root (default: the profile's, or make run's)."
    ),
]
KeyOption = Annotated[
    str | None, typer.Option("--key", envvar=KEY_ENV, metavar="KEY", help="The API key (default: the profile's).")
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", envvar=PROFILE_ENV, metavar="NAME", help="The profile to use (loyalty profile list)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer as it is.")]


def target(api: str | None, key: str | None, profile: str | None) -> Target:
    found = resolve(api, key, profile)
    if not found.key:
        raise CliError(
            f"no API key for {found.api}: pass --key, set {KEY_ENV}, or save one with "
            "`loyalty profile set NAME --api URL --key KEY`"
        )
    return found


def make_client(api: str, key: str) -> Client:
    return Client(RequestsTransport(api), key)


def connect(api: str | None, key: str | None, profile: str | None) -> Client:
    found = target(api, key, profile)
    assert found.key is not None
    return make_client(found.api, found.key)


# --- output -----------------------------------------------------------------------------------------


def show(value: Any) -> None:
    """One object, as JSON (its fields as the API names them)."""
    console.print_json(json.dumps(value, ensure_ascii=False))


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, title: str | None = None) -> None:
    listing = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        listing.add_column(column, overflow="fold")
    count = 0
    for row in rows:
        listing.add_row(*(_cell(_get(row, column)) for column in columns))
        count += 1
    if count:
        console.print(listing)
    else:
        console.print("(none)")


def listing(items: list[dict[str, Any]], columns: Sequence[str], as_json: bool, *, title: str | None = None) -> None:
    if as_json:
        console.print_json(json.dumps(items, ensure_ascii=False))
    else:
        table(items, columns, title=title)


def _get(row: dict[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


_INSTANT = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and (instant := _INSTANT.match(value)):
        return f"{instant[1]} {instant[2]}{'Z' if instant[4] in ('Z', '+00:00') else instant[4]}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
