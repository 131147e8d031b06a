"""What every command shares: the console, the database option, settings, ``--json`` output, and clean failure.

Two contracts for scripts live here, each in one place:

* ``--json``: a command that prints data prints, with ``--json``, one JSON document on standard output, made by
  :func:`to_jsonable` from the service's typed result (frozen dataclasses, pydantic models, enums, dates). Nothing
  is ever printed through ``repr``: an object the serializer does not know is refused, not guessed at.
* Exit codes (:class:`ExitCode`): 0 done, 1 refused by a rule, 2 usage, 3 not found, 4 permission. The services'
  exception types are mapped to them in :data:`EXIT_CODES`; :func:`guarded` applies the table to every command
  (``trialwright.cli.main`` wraps each one), and docs/cli.md lists it (``trialwright.cli.reference``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
import importlib
import inspect
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

__all__ = [
    "EXIT_CODES",
    "PASSWORD_VARIABLE",
    "DatabaseOption",
    "ExitCode",
    "JsonOption",
    "authenticate_as",
    "console",
    "emit",
    "err_console",
    "existing_trial_settings",
    "exit_code_for",
    "fail",
    "fail_with",
    "guarded",
    "keywords_of",
    "policy_for",
    "read_engine_of",
    "read_password",
    "settings_for",
    "to_json",
    "to_jsonable",
]

# emoji=False: Rich would print `file.yaml:100: ...` as `file.yaml💯 ...` (its :100: emoji code).
console = Console(soft_wrap=True, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="TRIALWRIGHT_DATABASE_URL",
        help="Database URL (default: the embedded SQLite file trialwright.db; "
        "PostgreSQL: postgresql+psycopg://USER@HOST:PORT/DB).",
        show_default=False,
    ),
]


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON document on standard output (for scripts).")
]


class ExitCode(enum.IntEnum):
    """How a command ends, for scripts: the same number for the same kind of outcome in every command."""

    OK = 0
    """Done."""
    REFUSED = 1
    """Refused by a rule of the trial or the protocol (nothing was changed), or the check found a problem. One
    exception: `form import --partial` keeps the rows that pass and ends with 1 when any row was refused (its
    report says how many were saved and which were refused)."""
    USAGE = 2
    """The command line was wrong: an unknown option, a missing or malformed value, an unusable setting."""
    NOT_FOUND = 3
    """What the command names does not exist (or is outside the user's sites): a participant, a file, a record."""
    PERMISSION = 4
    """The user may not do this: wrong password, no such active account, or a role that may not (a role the trial
    masks asking for the arms among them: `export --with-arms`, `analyse --unblinded`, `plan --unblinded`)."""


#: The services' exception types and the exit code each ends a command with, most specific first (the first
#: match wins). Names, not classes, so that ``trialwright --help`` imports no service. A service says that the actor
#: may not (their role, a wrong password re-entered) by marking its rule error ``AccessDenied``
#: (``trialwright.services.errors.denied``): that mark comes before the rule errors here, so it ends with PERMISSION.
EXIT_CODES: tuple[tuple[str, ExitCode], ...] = (
    ("trialwright.services.users.AuthenticationFailed", ExitCode.PERMISSION),
    ("trialwright.services.tokens.TokenAccessDenied", ExitCode.PERMISSION),
    ("trialwright.services.audit_trail.AuditReadError", ExitCode.PERMISSION),
    ("builtins.PermissionError", ExitCode.PERMISSION),
    ("trialwright.services.errors.AccessDenied", ExitCode.PERMISSION),  # a role that may not; a wrong password
    ("trialwright.services.screening.common.NotFound", ExitCode.NOT_FOUND),
    ("trialwright.services.trial.TrialNotInitialised", ExitCode.NOT_FOUND),
    ("builtins.FileNotFoundError", ExitCode.NOT_FOUND),
    ("trialwright.services.export_jobs.JobNotFound", ExitCode.NOT_FOUND),
    ("trialwright.services.export_jobs.JobNotReady", ExitCode.REFUSED),
    ("trialwright.services.email.sender.EmailNotConfigured", ExitCode.USAGE),
    ("trialwright.store.engine.DatabaseUnavailable", ExitCode.USAGE),
    ("trialwright.domain.calendars.DateEntryError", ExitCode.USAGE),
    ("trialwright.domain.paging.PageError", ExitCode.USAGE),
    ("trialwright.store.audit_keys.AuditKeyError", ExitCode.REFUSED),
    ("trialwright.services.audit_files.AuditFilesOfAnotherTrial", ExitCode.REFUSED),
    ("trialwright.protocol.loader.ProtocolError", ExitCode.REFUSED),
    ("trialwright.services.trial.TrialMismatch", ExitCode.REFUSED),
    ("trialwright.services.trial.ProtocolVersionConflict", ExitCode.REFUSED),
    ("trialwright.services.trial.AmendmentLocked", ExitCode.REFUSED),
    ("trialwright.services.ratelimit.RateLimited", ExitCode.REFUSED),
    ("trialwright.services.replica.ReplicaRefused", ExitCode.REFUSED),
    ("trialwright.services.backup.BackupError", ExitCode.REFUSED),
    ("trialwright.store.dump.DumpError", ExitCode.REFUSED),
    ("trialwright.services.audit_keys.AllocationsAltered", ExitCode.REFUSED),
    ("trialwright.services.logs.LogVersionConflict", ExitCode.REFUSED),
    # The rules' refusals (nothing was changed); a bare ValueError is not one of them: it is a defect.
    *((f"trialwright.{name}", ExitCode.REFUSED) for name in (
        "services.errors.FormError", "domain.forms.FormValueError", "services.screening.common.ScreeningError",
        "domain.eligibility.ScreeningValueError", "services.randomization.common.RandomizationError",
        "domain.randomization.StratificationError", "domain.preparation.PreparationError",
        "services.safety.common.SafetyError", "domain.safety.SafetyInputError", "services.users.UserError",
        "services.exports.ExportError", "exports.ipd.IpdError", "exports.fhir.FhirExportError",
        "exports.fhir_logs.FhirLogError",
        "services.odm_import.OdmImportError", "services.sharing.SharingError", "services.analysis.AnalysisError",
        "services.simulation.SimulationError", "domain.recruitment.RecruitmentError", "domain.text.TextError",
        "domain.calendars.NaiveTimeError", "protocol.formula.FormulaError", "services.coding.CodingError",
        "services.log_views.LogError", "domain.coding.DictionaryError", "domain.redcap.RedcapError",
        "exports.sdtm.SdtmExportError", "domain.redcap_logic.NotMapped", "domain.redcap_logic.FilterRefused",
        "exports.xport.XportError", "exports.dta.DtaError", "exports.sav.SavError",
        "protocol.cdisc_ct.UnknownCodelist",
    )),
)


def _exception_type(dotted: str) -> type | None:
    """The class ``dotted`` names: an exception type, or a mark mixed into some (``AccessDenied``)."""
    module, _, name = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # a renamed class: the test of this table names it
        return None
    return found if isinstance(found, type) else None


def exit_code_for(exc: BaseException) -> ExitCode | None:
    """The exit code a command ends with for ``exc``, from :data:`EXIT_CODES`; None for an exception not in it
    (a defect: it leaves with its traceback, never with a made-up code)."""
    for dotted, code in EXIT_CODES:
        kind = _exception_type(dotted)
        if kind is not None and isinstance(exc, kind):
            return code
    return None


def fail(message: str, code: int = ExitCode.REFUSED) -> NoReturn:
    """Print one clear line (no traceback) on standard error and leave with ``code`` (an :class:`ExitCode`)."""
    from rich.text import Text

    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def fail_with(exc: BaseException, message: str | None = None) -> NoReturn:
    """Leave for a service's exception: its message (or ``message``) and the code :data:`EXIT_CODES` gives it."""
    code = exit_code_for(exc)
    if code is None:
        raise exc
    fail(message if message is not None else str(exc), code)


def keywords_of(function: Callable[..., Any], body: Mapping[str, Any], option: str = "--data") -> dict[str, Any]:
    """``body`` (a JSON object read from ``option``) as the keyword arguments of ``function``: a key it does not
    take, or one it needs that is missing, refused naming the key and listing the known ones (exit 2), never a
    Python signature error."""
    taken = [p for p in inspect.signature(function).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    known = [p.name for p in taken]
    unknown = [k for k in body if k not in known]
    if unknown:
        fail(f"{option}: unknown key {', '.join(map(repr, unknown))}; the known keys: {', '.join(known)}",
             ExitCode.USAGE)  # fmt: skip
    missing = [p.name for p in taken if p.default is inspect.Parameter.empty and p.name not in body]
    if missing:
        fail(f"{option}: missing {', '.join(map(repr, missing))}; the known keys: {', '.join(known)}", ExitCode.USAGE)
    return dict(body)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(command: F) -> F:
    """``command`` with any exception of :data:`EXIT_CODES` turned into one clear line and its exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            problems = getattr(exc, "problems", None)
            detail = "; ".join(str(p) for p in problems) if isinstance(problems, list | tuple) and problems else None
            fail_with(exc, detail)

    run.guarded = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses and pydantic models by their fields, enums by their value,
    dates and times in ISO 8601, decimals and paths as text, tuples and sets as lists; a dataclass field declared
    ``repr=False`` (a secret) is left out. Anything else is refused with TypeError: a command never prints an
    object's ``repr``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # JSON has no NaN or infinity: "no value", said as null
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, PurePath | uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field kept out of the repr (a password, a cache) is kept out of the JSON too.
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):  # a pydantic model
        return to_jsonable(value.model_dump(mode="json"))
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # a NumPy number or array, not imported
        return to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    raise TypeError(f"no JSON form for a {type(value).__name__}")


def to_json(value: Any) -> str:
    """One JSON document for ``value`` (see :func:`to_jsonable`), indented, non-ASCII kept as written."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)


def emit(value: Any, as_json: bool) -> bool:
    """With ``--json``, print ``value`` as one JSON document and say True (the command is done); else False."""
    if as_json:
        typer.echo(to_json(value))
    return as_json


def settings_for(database: str | None = None):  # type: ignore[no-untyped-def]
    """Settings from the environment, with the command line's --database taking precedence.

    A variable read under its old name (from before the rename) is said on stderr, naming the new one. When
    the default embedded database would be used but only the old default file is in this folder, the
    command refuses and says how to rename it, instead of silently starting a new, empty trial."""
    import warnings
    from pathlib import Path

    from trialwright.legacy import DeprecatedNameWarning, stale_default_database
    from trialwright.settings import DEFAULT_DATABASE_FILE, DEFAULT_DATABASE_URL, Settings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", DeprecatedNameWarning)
        settings = Settings(database_url=database) if database else Settings()
    for warning in said:
        if issubclass(warning.category, DeprecatedNameWarning):
            err_console.print(f"[bold yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)
        else:  # not ours: passed on as it came
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if settings.database_url == DEFAULT_DATABASE_URL:
        old = stale_default_database(Path.cwd() / DEFAULT_DATABASE_FILE)
        if old is not None:
            fail(
                f"{old.name} is in this folder: it is a trial database from before the project was renamed, and "
                f"the default database is now {DEFAULT_DATABASE_FILE}. Rename it (with its -wal and -shm files, "
                f"if any): mv {old.name} {DEFAULT_DATABASE_FILE}; or name it: --database sqlite:///{old.name}"
            )
    return settings


def policy_for(database: str | None = None):  # type: ignore[no-untyped-def]
    """The lockout policy the settings ask for (a password re-entered on the command line counts toward it)."""
    from trialwright.services.reauth import access_policy

    return access_policy(settings_for(database))


def existing_trial_settings(database: str | None = None):  # type: ignore[no-untyped-def]
    """``settings_for(database)``, for a command that works on a trial: a SQLite file that is not there is said
    in one line with exit code 3 (not found), and is not created empty by connecting to it."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    settings = settings_for(database)
    url = make_url(settings.database_url)
    name = url.database or ""
    local_file = url.get_backend_name() == "sqlite" and name not in {"", ":memory:"} and not name.startswith("file:")
    if local_file and not Path(name).exists():
        fail(f"--database: no trial database at {Path(name).resolve()} (trialwright init --protocol FILE creates "
             "one; trialwright demo makes a demo trial)", ExitCode.NOT_FOUND)  # fmt: skip
    return settings


def trial_engine(database: str | None = None, *, check_audit_key: bool = True):  # type: ignore[no-untyped-def]
    """The engine of an existing trial, connected (and, unless ``check_audit_key`` is false, holding the trial's
    audit key when its trail is keyed): an unreachable database or a missing key is said in one line with its exit
    code. The one way a command that works on a trial opens it."""
    from trialwright.services.audit_keys import AuditKeyError, check_key, engine_for
    from trialwright.store.engine import DatabaseUnavailable, check_connection

    try:
        engine = engine_for(existing_trial_settings(database))
        check_connection(engine)
        if check_audit_key:
            check_key(engine)
    except (DatabaseUnavailable, AuditKeyError) as exc:
        fail_with(exc)
    return engine


def read_engine_of(engine, database: str | None = None):  # type: ignore[no-untyped-def]
    """The engine the analysis and the exports read through: the read replica TRIALWRIGHT_READ_DATABASE_URL names
    (checked to hold ``engine``'s audit head before each read), else ``engine`` itself."""
    from trialwright.services.replica import read_engine_for

    return read_engine_for(settings_for(database), engine)


#: Where a script gives the password of the account it acts as (``--as``), when no prompt can be answered.
PASSWORD_VARIABLE = "TRIALWRIGHT_PASSWORD"  # noqa: S105 - the variable's name, not a password


def read_password(*, password_stdin: bool = False, prompt: str = "Password") -> str:
    """The acting user's password as every password-taking command reads it: from standard input with
    ``password_stdin``, else from the TRIALWRIGHT_PASSWORD variable, else a hidden prompt. Not checked here."""
    import os
    import sys

    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get(PASSWORD_VARIABLE) is not None:
        return os.environ[PASSWORD_VARIABLE]
    try:
        return str(typer.prompt(prompt, hide_input=True))
    except typer.Abort:  # no terminal to ask on (standard input closed or at its end)
        fail(
            f"password: none given; type it when asked, set the {PASSWORD_VARIABLE} variable, or pass "
            "--password-stdin and write it on standard input",
            ExitCode.USAGE,
        )


def authenticate_as(engine, username: str, *, password_stdin: bool = False, why: str = "confirm"):  # type: ignore[no-untyped-def]
    """The active account ``username`` once its password is given: from standard input with
    ``password_stdin``, else from the TRIALWRIGHT_PASSWORD variable, else a hidden prompt. A wrong password counts
    toward the account's lockout, like a wrong re-entry on the web (21 CFR 11.300)."""
    from trialwright.services.users import confirm_password, get_user

    password = read_password(password_stdin=password_stdin, prompt=f"Password of {username}")
    user = get_user(engine, username)
    if user is None or not user.active or not confirm_password(engine, user.username, password, purpose=why):
        fail("--as: wrong username or password, or the account is disabled or locked", ExitCode.PERMISSION)
    return user
