"""The lock file (tools/requirements.lock): its sections, and whether a venv and setup.py agree with it.

Standard library only where it is read (set-up runs it with the system Python before .venv exists);
`packaging` is needed only by the checks, which run inside .venv.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
SECTION = re.compile(r"^# \[(?P<name>[a-z0-9-]+)\]")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
# Installed by hand in every venv, not by us: the installer itself.
NOT_LOCKED = {"pip"}
PROJECT = "lightglue-ros"
VENV_EXTRAS = ["cpu", "ros", "export", "fleet", "test"]  # what tools/setup_venv.sh and tools/update_lock.sh lock


def normalize(name: str) -> str:
    """PEP 503 name: how pip compares distribution names."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One locked distribution: its name, exact version, section and the lines that pin it (hashes)."""

    name: str
    version: str
    section: str
    text: str


def read_lock(path: Path = LOCK) -> dict[str, Pin]:
    """Every pinned distribution in the lock, by normalized name."""
    pins: dict[str, Pin] = {}
    section, lines = "", path.read_text().splitlines()
    for i, line in enumerate(lines):
        if found := SECTION.match(line):
            section = found["name"]
        elif found := PIN.match(line):
            block = [line]
            while block[-1].rstrip().endswith("\\"):
                block.append(lines[i + len(block)])
            pins[normalize(found["name"])] = Pin(normalize(found["name"]), found["version"], section, "\n".join(block))
    return pins


def section_requirements(pins: dict[str, Pin], sections: list[str]) -> str:
    """A requirements file (exact pins with their hashes) of the named sections."""
    missing = set(sections) - {pin.section for pin in pins.values()}
    if missing:
        raise SystemExit(f"tools/requirements.lock has no section {sorted(missing)}: run tools/update_lock.sh")
    return "".join(pin.text + "\n" for pin in pins.values() if pin.section in sections)


def wheel_pins(wheels: list[Path]) -> str:
    """Pins with sha256 hashes for local wheel files, read from their file names (PEP 427)."""
    out = []
    for wheel in sorted(wheels):
        name, version = wheel.name.split("-")[:2]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        out.append(f"{normalize(name)}=={version} \\\n    --hash=sha256:{digest}\n")
    return "".join(out)


def installed() -> dict[str, str]:
    """What an installer put in the running Python's environment: normalized name -> version.

    Only distributions with an INSTALLER file (PEP 376) count: the ROS wheels also carry the egg-info of
    the colcon packages inside them, which are files of the locked wheel, not installs of their own.
    """
    return {
        normalize(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.read_text("INSTALLER") is not None
    }


def outside_lock(pins: dict[str, Pin], present: dict[str, str]) -> list[str]:
    """What is installed but not locked, or installed at another version than the lock's."""
    problems = []
    for name, version in sorted(present.items()):
        if name in NOT_LOCKED or name == PROJECT:
            continue
        if name not in pins:
            problems.append(f"{name} {version} is installed but not in the lock")
        elif pins[name].version != version:
            problems.append(f"{name} {version} is installed, the lock says {pins[name].version}")
    return problems


def declared(extra: str | None = None) -> dict[str, Requirement]:
    """setup.py's requirements as installed: the base ones (extra None) or those of one extra only."""
    from packaging.requirements import Requirement

    found = {}
    for line in metadata.requires("lightglue_ros") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if (marker is None and extra is None) or (marker is not None and extra and marker.evaluate({"extra": extra})):
            found[normalize(requirement.name)] = requirement
    return found


def unadmitted(requirements: dict[str, Requirement], pins: dict[str, Pin]) -> list[str]:
    """Requirements that the locked versions do not satisfy, or that the lock does not hold at all."""
    problems = []
    for name, requirement in requirements.items():
        if name not in pins:
            problems.append(f"setup.py asks for {requirement}, which is not in the lock")
        elif not requirement.specifier.contains(pins[name].version, prereleases=True):
            problems.append(f"setup.py asks for {requirement}, the lock has {pins[name].version}")
    return problems


def venv_extras_requirements(extras: list[str]) -> dict[str, Requirement]:
    """What setup.py asks of .venv: the base requirements and those of each installed extra."""
    return {name: r for extra in [None, *extras] for name, r in declared(extra).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    section = sub.add_parser("section", help="print the pins of the named sections as a requirements file")
    section.add_argument("names", nargs="+")
    sub.add_parser("constraints", help="print every locked version, without hashes, as a constraints file")
    wheels = sub.add_parser("wheel-pins", help="print hashed pins for local wheel files")
    wheels.add_argument("wheels", nargs="+", type=Path)
    sub.add_parser("check", help="fail when this venv or setup.py disagrees with the lock")
    args = parser.parse_args()
    if args.command == "section":
        sys.stdout.write(section_requirements(read_lock(), args.names))
    elif args.command == "constraints":
        sys.stdout.write("".join(f"{pin.name}=={pin.version}\n" for pin in read_lock().values()))
    elif args.command == "wheel-pins":
        sys.stdout.write(wheel_pins(args.wheels))
    else:
        pins = read_lock()
        problems = outside_lock(pins, installed()) + unadmitted(venv_extras_requirements(VENV_EXTRAS), pins)
        if problems:
            raise SystemExit("\n".join(problems) + "\nThe venv does not match tools/requirements.lock.")


if __name__ == "__main__":
    main()
