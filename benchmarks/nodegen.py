"""Generate a test-driver ``<node>`` file with N domains.

The file uses libvirt's test-driver node format (``test:///abs/path.xml``):
a ``<node>`` root with ``<cpu>``, ``<memory>`` and inline ``<domain>``,
``<network>`` and ``<pool>`` (with ``<volume>``) elements, so the same file
loads in hvmon's test driver and in ``virsh -c test:///abs/path.xml``. Both
drivers start the domains of a node file running.

Usage: ``python benchmarks/nodegen.py 10000 -o /tmp/node-10000.xml``
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

#: Namespace for the generated UUIDs, so a given N always gives the same file.
UUID_NAMESPACE = uuid.UUID("8a6f6a62-3a8e-4d55-9a39-6b6a2f0f0d11")

NODE_HEAD = """<node>
  <cpu>
    <mhz>1400</mhz>
    <model>i686</model>
    <active>16</active>
    <nodes>2</nodes>
    <sockets>2</sockets>
    <cores>2</cores>
    <threads>2</threads>
  </cpu>
  <memory>{memory_kib}</memory>
"""

NETWORK = """  <network>
    <name>default</name>
    <uuid>{uuid}</uuid>
    <forward mode='nat'/>
    <bridge name='virbr0' stp='on' delay='0'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp>
        <range start='192.168.122.2' end='192.168.122.254'/>
      </dhcp>
    </ip>
  </network>
"""

POOL = """  <pool type='dir'>
    <name>bench-pool</name>
    <uuid>{uuid}</uuid>
    <capacity unit='bytes'>{capacity}</capacity>
    <allocation unit='bytes'>{allocation}</allocation>
    <available unit='bytes'>{available}</available>
    <target>
      <path>/bench-pool</path>
    </target>
    <volume type='file'>
      <name>base.img</name>
      <key>/bench-pool/base.img</key>
      <capacity unit='bytes'>{vol_capacity}</capacity>
      <allocation unit='bytes'>{vol_capacity}</allocation>
      <target>
        <path>/bench-pool/base.img</path>
      </target>
    </volume>
  </pool>
"""

DOMAIN = """  <domain type='test'>
    <name>{name}</name>
    <uuid>{uuid}</uuid>
    <memory unit='KiB'>{memory}</memory>
    <currentMemory unit='KiB'>{memory}</currentMemory>
    <vcpu placement='static'>{vcpus}</vcpu>
    <os>
      <type arch='i686'>hvm</type>
      <boot dev='hd'/>
    </os>
    <on_poweroff>destroy</on_poweroff>
    <on_reboot>restart</on_reboot>
    <on_crash>destroy</on_crash>
    <devices>
      <disk type='file' device='disk'>
        <source file='/bench-pool/{name}.img'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='{mac}'/>
        <source network='default'/>
      </interface>
    </devices>
  </domain>
"""

GIB = 1 << 30


def domain_name(index: int) -> str:
    """The name of the ``index``-th generated domain (``bench00001`` ...)."""
    return f"bench{index:05d}"


def _mac(index: int) -> str:
    high, mid, low = (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF
    return f"52:54:00:{high:02x}:{mid:02x}:{low:02x}"


def _domain(index: int) -> str:
    name = domain_name(index)
    return DOMAIN.format(
        name=name,
        uuid=uuid.uuid5(UUID_NAMESPACE, name),
        memory=(512 + 256 * (index % 4)) * 1024,
        vcpus=1 + index % 4,
        mac=_mac(index),
    )


def generate(count: int) -> str:
    """Return the text of a node document holding ``count`` domains."""
    if not 0 <= count < 1 << 24:
        raise ValueError("count must be between 0 and 16777215")
    parts = [NODE_HEAD.format(memory_kib=3 * 1024 * 1024)]
    parts.append(NETWORK.format(uuid=uuid.uuid5(UUID_NAMESPACE, "network:default")))
    parts.append(
        POOL.format(
            uuid=uuid.uuid5(UUID_NAMESPACE, "pool:bench-pool"),
            capacity=100 * GIB,
            allocation=10 * GIB,
            available=90 * GIB,
            vol_capacity=10 * GIB,
        )
    )
    parts.extend(_domain(index) for index in range(1, count + 1))
    parts.append("</node>\n")
    return "".join(parts)


def write_node(path: Path, count: int) -> Path:
    """Write a node document with ``count`` domains to ``path``; return its absolute path."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generate(count), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="number of domains")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    args = parser.parse_args(argv)
    print(write_node(args.output, args.count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
