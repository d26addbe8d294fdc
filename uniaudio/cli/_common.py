"""Shared click settings and the one rule for errors: a failing command prints one clear
line and exits non-zero; `--debug` (or UNIAUDIO_DEBUG=1) shows the traceback instead."""

from __future__ import annotations

import os

import click

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("uniaudio.debug")) or os.environ.get("UNIAUDIO_DEBUG", "0").lower() in ("1", "true", "yes")


class Group(click.Group):
    """A click group whose commands never end in a traceback unless asked to."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the user gets the message; --debug gets the traceback
            if _debug(ctx):
                raise
            # our errors (ValueError/RuntimeError/OSError families) carry whole sentences;
            # anything else is a bug or an unexpected library error: name its type
            msg = str(e) if isinstance(e, (ValueError, RuntimeError, OSError)) and str(e) else f"{type(e).__name__}: {e}"
            raise click.ClickException(msg) from None  # the traceback: --debug or UNIAUDIO_DEBUG=1


def debug_option(f):
    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                        callback=lambda ctx, param, value: ctx.meta.__setitem__("uniaudio.debug", value),
                        help="Show the full traceback of an error.")(f)


class Location(click.ParamType):
    """A folder given as a local path or an object-storage URI (s3://bucket/prefix). With
    `exists`, a local folder must exist and a prefix must hold `marker` (a remote prefix is
    no folder: what shows it is there is the file a finished command wrote)."""

    name = "folder or URI"

    def __init__(self, exists: bool = False, marker: str | None = None):
        self.exists, self.marker = exists, marker

    def convert(self, value, param, ctx):
        from .. import storage

        value = str(value)
        if not storage.is_uri(value):
            return click.Path(exists=self.exists, file_okay=False).convert(value, param, ctx)
        if self.exists and self.marker:
            try:
                found = storage.exists(storage.join(value, self.marker))
            except storage.StorageError as e:
                self.fail(str(e), param, ctx)
            if not found:
                self.fail(f"{value}: no {self.marker} there (not a finished output, or a wrong prefix)", param, ctx)
        return value.rstrip("/")
