"""Find the programs the local stack runs, or say in one line what to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from fleetlink.errors import MissingPrerequisiteError

MIN_JAVA = 17
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_java() -> Path:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH, at least Java 17 (Kafka 4 needs it)."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not candidate.is_file():
        found = shutil.which("java")
        candidate = Path(found) if found else None
    if candidate is None:
        raise MissingPrerequisiteError(
            f"Java {MIN_JAVA}+ is needed to run Kafka and was not found: "
            "install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    version = java_major_version(candidate)
    if version < MIN_JAVA:
        raise MissingPrerequisiteError(
            f"{candidate} is Java {version}; Kafka 4 needs Java {MIN_JAVA}+: "
            "install a newer JDK or point JAVA_HOME at one"
        )
    return candidate


def java_major_version(java: Path) -> int:
    result = subprocess.run(
        [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    return parse_java_version(result.stderr + result.stdout)


def parse_java_version(banner: str) -> int:
    """The major version from ``java -version`` output ("1.8.0_x" is 8, "17.0.15" is 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    if match is None:
        return 0
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def find_maven() -> Path:
    found = shutil.which("mvn")
    if found is None:
        raise MissingPrerequisiteError(
            "Maven is needed to fetch the Kafka jars and was not found: "
            "install it (Debian: apt-get install maven)"
        )
    return Path(found)


def find_mosquitto() -> Path:
    """Debian installs the broker in /usr/sbin, which a non-root PATH often lacks."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    found = shutil.which("mosquitto", path=search_path)
    if found is None:
        raise MissingPrerequisiteError(
            "Mosquitto is needed as the local MQTT broker and was not found: "
            "install it (Debian: apt-get install mosquitto)"
        )
    return Path(found)
