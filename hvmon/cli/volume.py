"""Storage volume commands: vol-list, vol-info, vol-create-as, vol-clone, ..."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import CliError
from hvmon.cli.output import fields, parse_size, pretty_size, table
from hvmon.cli.progress import ProgressBar, add_progress_args, progress_bar
from hvmon.cli.xmldoc import clone_xml, volume_xml

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.api import StorageVolume
    from hvmon.core.drivers.base import Progress

GROUP = "Storage Volume"


def size_arg(text: str) -> int:
    """argparse ``type=`` for sizes such as ``10G``."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _vol_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vol", help="vol name, key or path")
    parser.add_argument("--pool", help="pool name or uuid")


def _volume(ctx: CliContext, args: argparse.Namespace) -> StorageVolume:
    return lookup.volume(ctx.conn, args.vol, args.pool)


def volume_summary(vol: StorageVolume) -> dict[str, Any]:
    """The JSON object ``vol-list`` and ``vol-info`` print per volume."""
    info = vol.info()
    return {
        "name": vol.name,
        "pool": vol.pool_name,
        "path": vol.path,
        "key": vol.key,
        "type": info.type.label,
        "capacity_bytes": info.capacity,
        "allocation_bytes": info.allocation,
    }


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pool", help="pool name or uuid")
    parser.add_argument("--details", action="store_true", help="display extended details")


def cmd_vol_list(ctx: CliContext, args: argparse.Namespace) -> None:
    pool = lookup.pool(ctx.conn, args.pool)
    rows = sorted((volume_summary(v) for v in pool.list_volumes()), key=lambda r: r["name"])

    def text() -> str:
        if args.details:
            return table(["Name", "Path", "Type", "Capacity", "Allocation"],
                         [[r["name"], r["path"], r["type"], pretty_size(r["capacity_bytes"]),
                           pretty_size(r["allocation_bytes"])] for r in rows])
        return table(["Name", "Path"], [[r["name"], r["path"]] for r in rows])

    ctx.emit({"pool": pool.name, "volumes": rows}, text)


def _info_args(parser: argparse.ArgumentParser) -> None:
    _vol_args(parser)
    parser.add_argument("--bytes", action="store_true", help="sizes are represented in bytes")


def cmd_vol_info(ctx: CliContext, args: argparse.Namespace) -> None:
    data = volume_summary(_volume(ctx, args))

    def size(value: int) -> str:
        return f"{value} bytes" if args.bytes else pretty_size(value)

    ctx.emit(data, lambda: fields([
        ("Name:", data["name"]), ("Type:", data["type"]),
        ("Capacity:", size(data["capacity_bytes"])),
        ("Allocation:", size(data["allocation_bytes"])),
    ]))


def cmd_vol_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    xml = _volume(ctx, args).xml_desc()
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def cmd_vol_path(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.write(_volume(ctx, args).path + "\n")


def cmd_vol_key(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.write(_volume(ctx, args).key + "\n")


def _create_as_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pool", help="pool name or uuid")
    parser.add_argument("name", help="name of the volume")
    parser.add_argument("capacity", type=size_arg,
                        help="size of the vol, as scaled integer (default bytes)")
    parser.add_argument("--allocation", type=size_arg,
                        help="initial allocation size, as scaled integer (default bytes)")
    parser.add_argument("--format", dest="fmt", help="file format type raw,qcow2,...")


def cmd_vol_create_as(ctx: CliContext, args: argparse.Namespace) -> None:
    pool = lookup.pool(ctx.conn, args.pool)
    vol = pool.create_volume_xml(volume_xml(args.name, args.capacity, args.allocation,
                                            args.fmt))
    ctx.say(f"Vol {vol.name} created")


def _clone_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vol", help="orig vol name, key or path")
    parser.add_argument("newname", help="clone name")
    parser.add_argument("--pool", help="pool name or uuid of the original volume")
    add_progress_args(parser)


def cmd_vol_clone(ctx: CliContext, args: argparse.Namespace) -> None:
    source = _volume(ctx, args)
    pool = lookup.pool(ctx.conn, source.pool_name)
    xml = clone_xml(source.xml_desc(), args.newname)
    bar = progress_bar(ctx.err, args, f"Cloning {source.name}")
    try:
        vol = pool.clone_volume(xml, source, bar)
    finally:
        if bar is not None:
            bar.finish()
    ctx.say(f"Vol {vol.name} cloned from {source.name}")


def _transfer_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vol", help="vol name, key or path")
    parser.add_argument("file", help="file")
    parser.add_argument("--pool", help="pool name or uuid")
    parser.add_argument("--offset", type=size_arg, default=0, help="volume offset to start at")
    parser.add_argument("--length", type=size_arg, default=0,
                        help="amount of data to transfer (0: to the end)")
    add_progress_args(parser)


#: chunk size for reading a file to upload
UPLOAD_CHUNK = 256 * 1024


def _file_chunks(stream: BinaryIO, length: int) -> Iterator[bytes]:
    remaining = length or -1
    while remaining:
        chunk = stream.read(UPLOAD_CHUNK if remaining < 0 else min(UPLOAD_CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def cmd_vol_upload(ctx: CliContext, args: argparse.Namespace) -> None:
    vol = _volume(ctx, args)
    try:
        stream = open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CliError(f"cannot read '{args.file}': {exc.strerror}") from None
    with stream:
        size = os.fstat(stream.fileno()).st_size
        length = args.length or max(size, 0)
        bar = progress_bar(ctx.err, args, f"Uploading {vol.name}")
        try:
            written = vol.upload(_file_chunks(stream, length), args.offset, args.length,
                                 _totalled(bar, length))
        finally:
            if bar is not None:
                bar.finish()
    ctx.say(f"Uploaded {written} bytes to volume {vol.name}")


def cmd_vol_download(ctx: CliContext, args: argparse.Namespace) -> None:
    vol = _volume(ctx, args)
    bar = progress_bar(ctx.err, args, f"Downloading {vol.name}")
    chunks = vol.download(args.offset, args.length, bar)
    try:
        with open(args.file, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
    except OSError as exc:
        raise CliError(f"cannot write '{args.file}': {exc.strerror}") from None
    finally:
        if bar is not None:
            bar.finish()
    ctx.say(f"Downloaded volume {vol.name} to {args.file}")


def _totalled(bar: ProgressBar | None, total: int) -> Progress | None:
    """A progress callback that measures against the file's size."""
    if bar is None:
        return None
    return lambda done, _total: bar(done, total)


def cmd_vol_delete(ctx: CliContext, args: argparse.Namespace) -> None:
    vol = _volume(ctx, args)
    vol.delete()
    ctx.say(f"Vol {vol.name} deleted")


def _resize_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vol", help="vol name, key or path")
    parser.add_argument("capacity", help="new capacity for the vol, as scaled integer")
    parser.add_argument("--pool", help="pool name or uuid")
    parser.add_argument("--delta", action="store_true",
                        help="use capacity as a delta to current size")
    parser.add_argument("--shrink", action="store_true",
                        help="allow the resize to shrink the volume")


def cmd_vol_resize(ctx: CliContext, args: argparse.Namespace) -> None:
    amount = _parse_size(args.capacity)
    vol = _volume(ctx, args)
    current = vol.info().capacity
    capacity = current + amount if args.delta else amount
    if capacity < current and not args.shrink:
        raise CliError("Can't shrink capacity below current capacity unless shrink flag "
                       "explicitly specified")
    vol.resize(capacity)
    ctx.say(f"Size of volume '{vol.name}' successfully changed to {args.capacity}")


def _parse_size(text: str) -> int:
    """A size for a handler (errors are one-line :class:`CliError`)."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def commands() -> list[Command]:
    """The storage volume commands."""
    return [
        Command("vol-list", "list vols", cmd_vol_list, _list_args, json=True, group=GROUP),
        Command("vol-info", "storage vol information", cmd_vol_info, _info_args, json=True,
                group=GROUP),
        Command("vol-dumpxml", "vol information in XML", cmd_vol_dumpxml, _vol_args,
                group=GROUP),
        Command("vol-path", "returns the volume path for a given volume name or key",
                cmd_vol_path, _vol_args, group=GROUP),
        Command("vol-key", "returns the volume key for a given volume name or path",
                cmd_vol_key, _vol_args, group=GROUP),
        Command("vol-create-as", "create a volume from a set of args", cmd_vol_create_as,
                _create_as_args, group=GROUP),
        Command("vol-clone", "clone a volume", cmd_vol_clone, _clone_args, group=GROUP),
        Command("vol-delete", "delete a vol", cmd_vol_delete, _vol_args, group=GROUP),
        Command("vol-upload", "upload file contents to a volume", cmd_vol_upload,
                _transfer_args, group=GROUP),
        Command("vol-download", "download volume contents to a file", cmd_vol_download,
                _transfer_args, group=GROUP),
        Command("vol-resize", "resize a vol", cmd_vol_resize, _resize_args, group=GROUP),
    ]
